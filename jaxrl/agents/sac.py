"""Soft Actor-Critic for continuous and discrete actions, with automatic temperature.

Haarnoja et al., Soft Actor-Critic Algorithms and Applications (2018):
https://arxiv.org/abs/1812.05905; discrete actions after Christodoulou, Soft
Actor-Critic for Discrete Action Settings (2019): https://arxiv.org/abs/1910.07207

Continuous actions (a tanh-squashed Gaussian on [−1, 1], rescaled to the
environment's bounds by :func:`jaxrl.agents.off_policy.make_env`), one learning
step on a sample (s, a, r, s', terminated):

    a' ~ π(·|s'),  y = r + γ·(1 − terminated)·(min(Q'₁, Q'₂)(s', a') − α·log π(a'|s'))
    critics: minimise Σₖ ½(Qₖ(s, a) − y)²
    actor:   minimise α·log π(ã|s) − min(Q₁, Q₂)(s, ã),  ã ~ π(·|s) reparameterised
    α:       minimise −log α·(log π(ã|s) + H̄),  H̄ = −target_entropy_scale·dim(A)
    θ' ← τθ + (1 − τ)θ' for the critics (every ``target_update_interval`` steps)

Discrete actions replace the samples by exact sums over the actions: the
critics are two Q-networks Q(s, ·), V(s') = Σₐ π(a|s')(min Q'(s', a) − α log π(a|s')),
the actor minimises Σₐ π(a|s)(α log π(a|s) − min Q(s, a)), and the temperature
targets H̄ = target_entropy_ratio·log|A|.

s' is the real next state, so a truncated step bootstraps and a terminated one
does not. The losses are :mod:`jaxrl.core.policy`'s ``sac_*`` functions.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax
import jax
import jax.numpy as jnp

from jaxrl import buffers, nets
from jaxrl._config import config, one_of, positive, positive_int, probability, require, static
from jaxrl.agents import off_policy
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.core import (
    sac_actor_loss,
    sac_alpha_loss,
    sac_discrete_actor_loss,
    sac_discrete_alpha_loss,
    sac_discrete_soft_value,
    sac_soft_target,
    squared_loss,
)

__all__ = [
    "Config",
    "SACLearner",
    "continuous_step",
    "discrete_step",
    "make_agent",
    "make_networks",
    "make_train",
    "target_entropy",
]


@config
class Config(off_policy.LoopConfig):
    """SAC settings (continuous or discrete actions). Static fields fix shapes; the numeric
    ones can be swept under vmap."""

    torso: str = static("mlp", "mlp or cnn (discrete actions only)")
    autotune: bool = static(True, "learn α toward the target entropy (else α = init_alpha)")
    target_update_interval: int = static(1, "gradient steps between target updates")
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    alpha_lr: float = 1e-3
    init_alpha: float = 1.0
    target_entropy_scale: float = 1.0
    target_entropy_ratio: float = 0.7

    def validate(self):
        super().validate()
        require(self, "torso", one_of("mlp", "cnn"))
        require(self, "target_update_interval", positive_int)
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha"):
            require(self, name, positive)
        require(self, "target_entropy_ratio", probability)


@flax.struct.dataclass
class SACLearner:
    """SAC's learning state."""

    actor_params: Any
    critic_params: Any  # continuous: TwinQ params; discrete: two QNetworks stacked on axis 0
    critic_target: Any
    log_alpha: jax.Array  # scalar
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any


def target_entropy(cfg: Config, action_info) -> jax.Array:
    """H̄: −scale·dim(A) for continuous actions, ratio·log|A| for discrete ones."""
    if action_info.discrete:
        return cfg.target_entropy_ratio * math.log(action_info.num_actions)
    return -cfg.target_entropy_scale * action_info.action_dim


def make_networks(config: Config, action_info=None):
    """``(actor, critic)``: SquashedGaussianActor and TwinQ, or CategoricalActor and a
    QNetwork (whose parameters the learner stacks twice)."""
    if action_info is None:
        action_info = off_policy.make_env(config.env_id, 1)[2]
    hidden = tuple(config.hidden_sizes)
    if action_info.discrete:
        actor = nets.CategoricalActor(
            num_actions=action_info.num_actions,
            hidden_sizes=hidden,
            activation=config.activation,
            torso=config.torso,
        )
        critic = nets.QNetwork(
            num_actions=action_info.num_actions,
            hidden_sizes=hidden,
            activation=config.activation,
            torso=config.torso,
        )
        return actor, critic
    if config.torso != "mlp":
        raise ValueError(f"SAC: torso {config.torso!r} needs discrete actions; use 'mlp'")
    actor = nets.SquashedGaussianActor(
        action_dim=action_info.action_dim, hidden_sizes=hidden, activation=config.activation
    )
    return actor, nets.TwinQ(hidden_sizes=hidden, activation=config.activation)


def _twin_discrete(critic, params, obs) -> jax.Array:
    """Q(s, ·) of both stacked critics: ``[2, N, A]``."""
    return jax.vmap(critic.apply, in_axes=(0, None))(params, obs)


def _alpha_step(learner: SACLearner, alpha_loss_fn, cfg: Config):
    if not cfg.autotune:
        return learner, jnp.zeros((), jnp.float32)
    loss, grad = jax.value_and_grad(alpha_loss_fn)(learner.log_alpha)
    log_alpha, alpha_opt = off_policy.apply_updates(
        learner.log_alpha, grad, learner.alpha_opt, off_policy.adam(cfg.alpha_lr)
    )
    return learner.replace(log_alpha=log_alpha, alpha_opt=alpha_opt), loss


def _critic_update(learner: SACLearner, loss_fn, cfg: Config):
    (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(learner.critic_params)
    critic_params, critic_opt = off_policy.apply_updates(
        learner.critic_params, grads, learner.critic_opt, off_policy.adam(cfg.critic_lr)
    )
    return learner.replace(critic_params=critic_params, critic_opt=critic_opt), loss, q


def _actor_update(learner: SACLearner, loss_fn, cfg: Config):
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(learner.actor_params)
    actor_params, actor_opt = off_policy.apply_updates(
        learner.actor_params, grads, learner.actor_opt, off_policy.adam(cfg.actor_lr)
    )
    return learner.replace(actor_params=actor_params, actor_opt=actor_opt), loss, aux


def _step_metrics(c_loss, q, a_loss, alpha, alpha_loss, entropy) -> dict:
    """One SAC step's metrics: td_loss (per critic, of the twin critics' summed loss), q_mean
    (of the first critic, ``q [2, N]``), actor_loss, α, alpha_loss and the policy's entropy."""
    return {
        "td_loss": c_loss / 2.0,
        "q_mean": jnp.mean(q[0]),
        "actor_loss": a_loss,
        "alpha": alpha,
        "alpha_loss": alpha_loss,
        "entropy": entropy,
    }


def continuous_step(learner: SACLearner, t: buffers.Transition, key, cfg, *, actor, critic, h_bar):
    """One SAC step (critics, actor, α) on continuous transitions ``[N, *]``.

    Returns:
      ``(learner, metrics)``; targets are not updated here.
    """
    next_key, key = jax.random.split(key)
    alpha = jnp.exp(learner.log_alpha)
    next_a, next_logp = actor.apply(learner.actor_params, t.next_obs).sample_and_log_prob(
        seed=next_key
    )
    next_q = critic.apply(learner.critic_target, t.next_obs, next_a)
    discount = off_policy.discount(t, cfg.gamma)
    y = sac_soft_target(t.reward, discount, next_q.q1, next_q.q2, next_logp, alpha)

    def critic_loss(params):
        q = critic.apply(params, t.obs, t.action)
        q = jnp.stack([q.q1, q.q2])
        return jnp.sum(jnp.mean(squared_loss(y[None] - q), axis=1)), q

    learner, c_loss, q = _critic_update(learner, critic_loss, cfg)

    def actor_loss(params):
        a, logp = actor.apply(params, t.obs).sample_and_log_prob(seed=key)
        q_pi = critic.apply(learner.critic_params, t.obs, a).minimum()
        return sac_actor_loss(logp, q_pi, alpha), logp

    learner, a_loss, logp = _actor_update(learner, actor_loss, cfg)
    logp = jax.lax.stop_gradient(logp)
    learner, alpha_loss = _alpha_step(learner, lambda la: sac_alpha_loss(la, logp, h_bar), cfg)
    return learner, _step_metrics(c_loss, q, a_loss, alpha, alpha_loss, -jnp.mean(logp))


def discrete_step(learner: SACLearner, t: buffers.Transition, key, cfg, *, actor, critic, h_bar):
    """One discrete SAC step (critics, actor, α) on transitions ``[N, *]``, exact over actions.

    Returns:
      ``(learner, metrics)``; targets are not updated here.
    """
    del key
    alpha = jnp.exp(learner.log_alpha)

    def policy(params, obs):
        logits = actor.apply(params, obs).logits
        return jax.nn.softmax(logits), jax.nn.log_softmax(logits)

    next_probs, next_logp = policy(learner.actor_params, t.next_obs)
    next_q = _twin_discrete(critic, learner.critic_target, t.next_obs)
    v_next = sac_discrete_soft_value(next_probs, next_logp, next_q[0], next_q[1], alpha)
    y = t.reward + off_policy.discount(t, cfg.gamma) * v_next
    action = t.action.astype(jnp.int32)

    def critic_loss(params):
        q_all = _twin_discrete(critic, params, t.obs)  # [2, N, A]
        q = jnp.take_along_axis(q_all, action[None, :, None], axis=-1)[..., 0]
        return jnp.sum(jnp.mean(squared_loss(y[None] - q), axis=1)), q

    learner, c_loss, q = _critic_update(learner, critic_loss, cfg)
    q_now = jax.lax.stop_gradient(_twin_discrete(critic, learner.critic_params, t.obs).min(0))

    def actor_loss(params):
        probs, logp = policy(params, t.obs)
        return sac_discrete_actor_loss(probs, logp, q_now, alpha), (probs, logp)

    learner, a_loss, (probs, logp) = _actor_update(learner, actor_loss, cfg)
    probs, logp = jax.lax.stop_gradient(probs), jax.lax.stop_gradient(logp)
    learner, alpha_loss = _alpha_step(
        learner, lambda la: sac_discrete_alpha_loss(la, probs, logp, h_bar), cfg
    )
    entropy = -jnp.mean(jnp.sum(probs * logp, axis=-1))
    return learner, _step_metrics(c_loss, q, a_loss, alpha, alpha_loss, entropy)


def _learn(learner: SACLearner, sample, key, grad_steps, cfg, *, step_fn):
    learner, metrics = step_fn(learner, sample.transitions, key, cfg)
    target = off_policy.target_update(
        learner.critic_target,
        learner.critic_params,
        grad_steps,
        cfg.tau,
        cfg.target_update_interval,
    )
    return off_policy.LearnOutput(learner.replace(critic_target=target), metrics, None)


def _act(learner: SACLearner, obs, key, env_steps, cfg, *, actor):
    del env_steps, cfg
    return actor.apply(learner.actor_params, obs).sample(seed=key), {}


def make_agent(config: Config) -> Agent:
    """Builds SAC's ``init`` and ``update`` (see :mod:`jaxrl.agents.base`)."""
    env = off_policy.make_env(config.env_id, config.num_envs)
    action_info = env.action_info
    actor, critic = make_networks(config, action_info)
    step = discrete_step if action_info.discrete else continuous_step

    def init_learner(key, cfg: Config, example):
        actor_key, critic_key, key = jax.random.split(key, 3)
        obs, action = example.obs[None], example.action[None]
        actor_params = actor.init(actor_key, obs)
        if action_info.discrete:
            keys = jax.random.split(critic_key, 2)
            critic_params = jax.vmap(critic.init, in_axes=(0, None))(keys, obs)
        else:
            critic_params = critic.init(critic_key, obs, action)
        log_alpha = jnp.log(jnp.asarray(cfg.init_alpha, jnp.float32))
        learner = SACLearner(
            actor_params=actor_params,
            critic_params=critic_params,
            critic_target=critic_params,
            log_alpha=log_alpha,
            actor_opt=off_policy.adam(cfg.actor_lr).init(actor_params),
            critic_opt=off_policy.adam(cfg.critic_lr).init(critic_params),
            alpha_opt=off_policy.adam(cfg.alpha_lr).init(log_alpha),
        )
        return learner, key

    def step_fn(learner, transitions, key, cfg):
        h_bar = target_entropy(cfg, action_info)
        return step(learner, transitions, key, cfg, actor=actor, critic=critic, h_bar=h_bar)

    buffer = buffers.make_replay_buffer(config.buffer_size, config.num_envs, config.batch_size)
    act_fn = functools.partial(_act, actor=actor)
    learn_fn = functools.partial(_learn, step_fn=step_fn)
    return off_policy.build_agent(config, env, buffer, init_learner, act_fn, learn_fn)


def make_train(config: Config):
    """``train(key) -> (OffPolicyState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)``."""
    return make_train_fn(make_agent(config), config)
