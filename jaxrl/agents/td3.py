"""Twin Delayed DDPG (TD3): deterministic actor, twin critics, delayed actor updates,
target policy smoothing.

Fujimoto et al., Addressing Function Approximation Error in Actor-Critic
Methods (2018): https://arxiv.org/abs/1802.09477

Actions live in [−1, 1] (the environment rescales them to its bounds, see
:func:`jaxrl.agents.off_policy.make_env`). Exploration adds N(0, σ_explore²)
to μ(s), clipped to the box. One learning step on a sample (s, a, r, s',
terminated):

    a' = clip(μ'(s') + clip(σ_target·ε, −c, c), −1, 1)            (target policy smoothing)
    y  = r + γ·(1 − terminated)·min(Q'₁(s', a'), Q'₂(s', a'))     (clipped double Q)
    critics: minimise Σₖ ½(Qₖ(s, a) − y)²
    every ``policy_delay`` steps: actor minimises −Q₁(s, μ(s)), then
    θ' ← τθ + (1 − τ)θ' for the actor and both critics.

s' is the real next state, so a truncated step bootstraps and a terminated one
does not. DDPG (:mod:`jaxrl.agents.ddpg`) is the same learner with one critic,
no smoothing and no delay; the pieces here take those three switches as a
:class:`Variant`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp

from jaxrl import buffers, nets
from jaxrl._config import (
    config,
    non_negative,
    positive,
    positive_int,
    require,
    static,
)
from jaxrl.agents import off_policy
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.core import dpg_actor_loss, gaussian_noise, squared_loss, td3_target_actions

__all__ = [
    "Config",
    "DeterministicConfig",
    "TD3Learner",
    "Variant",
    "build_agent",
    "critic_loss",
    "make_agent",
    "make_networks",
    "make_train",
]


@config
class DeterministicConfig(off_policy.LoopConfig):
    """The fields of DDPG, which TD3 extends: a deterministic actor with Gaussian noise."""

    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    exploration_noise: float = 0.1

    def validate(self):
        super().validate()
        for name in ("actor_lr", "critic_lr"):
            require(self, name, positive)
        require(self, "exploration_noise", non_negative)


@config
class Config(DeterministicConfig):
    """TD3 settings. Static fields fix shapes; the numeric ones can be swept under vmap."""

    policy_delay: int = static(2, "critic steps per actor (and target) update")
    target_noise: float = 0.2
    target_noise_clip: float = 0.5

    def validate(self):
        super().validate()
        require(self, "policy_delay", positive_int)
        require(self, "target_noise", non_negative)
        require(self, "target_noise_clip", non_negative)


class Variant(NamedTuple):
    """The switches that make the TD3 learner DDPG."""

    twin_critics: bool  # min over two critics in the target (else one critic)
    smoothing: bool  # noise on the target actions
    policy_delay: int  # critic steps per actor and target update


@flax.struct.dataclass
class TD3Learner:
    """Learning state of TD3 and DDPG."""

    actor_params: Any
    critic_params: Any
    actor_target: Any
    critic_target: Any
    actor_opt: Any
    critic_opt: Any
    actor_loss: jax.Array  # the last actor loss (reported between delayed updates)


def make_networks(config, action_info=None, twin_critics: bool = True):
    """``(actor, critic)``: a DeterministicActor on [−1, 1] and TwinQ (or one ContinuousQ)."""
    if action_info is None:
        action_info = off_policy.make_env(config.env_id, 1)[2]
    if action_info.discrete:
        raise ValueError(
            f"{config.env_id!r} has a discrete action space; DDPG and TD3 need a continuous "
            "one (use dqn or sac)"
        )
    hidden = tuple(config.hidden_sizes)
    actor = nets.DeterministicActor(
        action_dim=action_info.action_dim, hidden_sizes=hidden, activation=config.activation
    )
    critic_cls = nets.TwinQ if twin_critics else nets.ContinuousQ
    return actor, critic_cls(hidden_sizes=hidden, activation=config.activation)


def _q_stack(out) -> jax.Array:
    """Critic output as ``[K, N]``: TwinQValues -> K = 2, one critic's ``[N]`` -> K = 1."""
    if isinstance(out, nets.TwinQValues):
        return jnp.stack([out.q1, out.q2])
    return out[None]


def critic_loss(critic_params, critic_apply, transitions: buffers.Transition, targets):
    """Σₖ mean ½(Qₖ(s, a) − y)² over the critics, with ``targets`` y ``[N]`` held fixed.

    Returns:
      ``(loss, q [K, N])``.
    """
    q = _q_stack(critic_apply(critic_params, transitions.obs, transitions.action))
    td = jax.lax.stop_gradient(targets)[None] - q
    return jnp.sum(jnp.mean(squared_loss(td), axis=1)), q


def _targets(learner: TD3Learner, t: buffers.Transition, key, cfg, *, actor, critic, variant):
    next_actions = actor.apply(learner.actor_target, t.next_obs)
    if variant.smoothing:
        next_actions = td3_target_actions(
            key, next_actions, cfg.target_noise, cfg.target_noise_clip, -1.0, 1.0
        )
    next_q = _q_stack(critic.apply(learner.critic_target, t.next_obs, next_actions)).min(axis=0)
    return t.reward + off_policy.discount(t, cfg.gamma) * next_q


def _actor_step(learner: TD3Learner, obs, cfg, *, actor, critic):
    """One actor step on −Q₁(s, μ(s)), then Polyak updates of both targets."""

    def loss_fn(actor_params):
        q = _q_stack(critic.apply(learner.critic_params, obs, actor.apply(actor_params, obs)))
        return dpg_actor_loss(q[0])

    loss, grads = jax.value_and_grad(loss_fn)(learner.actor_params)
    actor_params, actor_opt = off_policy.apply_updates(
        learner.actor_params, grads, learner.actor_opt, off_policy.adam(cfg.actor_lr)
    )
    return learner.replace(
        actor_params=actor_params,
        actor_opt=actor_opt,
        actor_target=off_policy.polyak_update(learner.actor_target, actor_params, cfg.tau),
        critic_target=off_policy.polyak_update(
            learner.critic_target, learner.critic_params, cfg.tau
        ),
        actor_loss=loss,
    )


def _learn(learner: TD3Learner, sample, key, grad_steps, cfg, *, actor, critic, variant):
    t = sample.transitions
    targets = _targets(learner, t, key, cfg, actor=actor, critic=critic, variant=variant)
    (loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(
        learner.critic_params, critic.apply, t, targets
    )
    critic_params, critic_opt = off_policy.apply_updates(
        learner.critic_params, grads, learner.critic_opt, off_policy.adam(cfg.critic_lr)
    )
    learner = learner.replace(critic_params=critic_params, critic_opt=critic_opt)
    actor_step = functools.partial(_actor_step, obs=t.obs, cfg=cfg, actor=actor, critic=critic)
    if variant.policy_delay == 1:
        learner = actor_step(learner)
    else:
        due = grad_steps % variant.policy_delay == 0
        learner = jax.lax.cond(due, actor_step, lambda x: x, learner)
    metrics = {
        "td_loss": loss / q.shape[0],
        "q_mean": jnp.mean(q[0]),
        "actor_loss": learner.actor_loss,
    }
    return off_policy.LearnOutput(learner, metrics, None)


def _act(learner: TD3Learner, obs, key, env_steps, cfg, *, actor):
    del env_steps
    actions = gaussian_noise(
        key, actor.apply(learner.actor_params, obs), cfg.exploration_noise, -1.0, 1.0
    )
    return actions, {}


def build_agent(config, variant: Variant) -> Agent:
    """TD3's ``init`` and ``update`` for ``config`` with the switches of ``variant``."""
    env = off_policy.make_env(config.env_id, config.num_envs)
    actor, critic = make_networks(config, env.action_info, variant.twin_critics)
    buffer = buffers.make_replay_buffer(config.buffer_size, config.num_envs, config.batch_size)

    def init_learner(key, cfg, example):
        actor_key, critic_key, key = jax.random.split(key, 3)
        obs, action = example.obs[None], example.action[None]
        actor_params = actor.init(actor_key, obs)
        critic_params = critic.init(critic_key, obs, action)
        learner = TD3Learner(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_target=actor_params,
            critic_target=critic_params,
            actor_opt=off_policy.adam(cfg.actor_lr).init(actor_params),
            critic_opt=off_policy.adam(cfg.critic_lr).init(critic_params),
            actor_loss=jnp.zeros((), jnp.float32),
        )
        return learner, key

    act_fn = functools.partial(_act, actor=actor)
    learn_fn = functools.partial(_learn, actor=actor, critic=critic, variant=variant)
    return off_policy.build_agent(config, env, buffer, init_learner, act_fn, learn_fn)


def make_agent(config: Config) -> Agent:
    """Builds TD3's ``init`` and ``update`` (see :mod:`jaxrl.agents.base`)."""
    return build_agent(config, Variant(True, True, config.policy_delay))


def make_train(config: Config):
    """``train(key) -> (OffPolicyState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)``."""
    return make_train_fn(make_agent(config), config)
