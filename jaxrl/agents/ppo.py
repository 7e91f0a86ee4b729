"""Proximal Policy Optimization (clipped surrogate, GAE, optional value clipping).

Schulman et al., Proximal Policy Optimization Algorithms: https://arxiv.org/abs/1707.06347
Implementation details follow Huang et al., The 37 Implementation Details of PPO:
https://iclr-blog-track.github.io/2022/03/25/ppo-implementation-details/

One update: collect ``num_steps`` steps from ``num_envs`` environments, compute
advantages (GAE by default, any :data:`~jaxrl.agents.on_policy.AdvantageFn`
can be passed in), then ``num_epochs`` passes of ``num_minibatches`` gradient
steps on the clipped objective.
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from jaxrl import envs, nets
from jaxrl._config import (
    config,
    in_range,
    non_negative,
    one_of,
    positive,
    positive_int,
    positive_ints,
    probability,
    require,
    static,
)
from jaxrl.agents import on_policy
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.core.policy import ppo_clip_loss
from jaxrl.core.value import clipped_value_loss

__all__ = [
    "Config",
    "PPOState",
    "make_agent",
    "make_network",
    "make_train",
    "ppo_loss",
    "update_minibatch",
]


@config
class Config:
    """PPO settings. Static fields fix shapes; the numeric ones can be swept under vmap."""

    env_id: str = static("CartPole-v1", "environment id (jaxrl.envs.make)")
    total_timesteps: int = static(500_000, "environment steps over all environments")
    num_envs: int = static(4, "environments stepped as one batch")
    num_steps: int = static(128, "rollout length T per update")
    num_epochs: int = static(4, "passes over each rollout")
    num_minibatches: int = static(4, "minibatches per pass")
    hidden_sizes: tuple[int, ...] = static((64, 64), "MLP layer widths")
    activation: str = static("tanh", "tanh or relu")
    torso: str = static("mlp", "mlp or cnn (MinAtar)")
    shared_torso: bool = static(False, "actor and critic share the torso")
    anneal_lr: bool = static(True, "decay the learning rate linearly to 0")
    normalize_advantages: bool = static(True, "standardise advantages per minibatch")
    clip_value: bool = static(True, "clip the value update as in PPO2")
    normalize_obs: bool = static(False, "running observation normalisation")
    normalize_rewards: bool = static(False, "return-based reward scaling")
    learning_rate: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5

    def validate(self):
        for name in ("total_timesteps", "num_envs", "num_steps", "num_epochs", "num_minibatches"):
            require(self, name, positive_int)
        require(self, "hidden_sizes", positive_ints)
        require(self, "activation", one_of("tanh", "relu"))
        require(self, "torso", one_of("mlp", "cnn"))
        for name in ("learning_rate", "max_grad_norm", "clip_eps", "value_clip_eps"):
            require(self, name, positive)
        for name in ("gamma", "gae_lambda"):
            require(self, name, probability)
        require(self, "ent_coef", non_negative)
        require(self, "vf_coef", non_negative)
        require(self, "clip_eps", in_range(0, 1, low_open=True, high_open=True))
        batch = self.num_envs * self.num_steps
        if batch % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps ({batch}) must be divisible by num_minibatches "
                f"({self.num_minibatches})"
            )
        if self.total_timesteps < batch:
            raise ValueError(
                f"total_timesteps ({self.total_timesteps}) must be at least num_envs * num_steps "
                f"({batch}), the steps of one update"
            )


@flax.struct.dataclass
class PPOState:
    """Everything a PPO run carries from one update to the next."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [B, *obs]
    key: jax.Array
    update_count: jax.Array  # int32 scalar


def make_network(config: Config, action_info=None) -> nets.ActorCritic:
    """The actor-critic network of ``config``: ``apply(params, obs) -> (distribution, values)``."""
    if action_info is None:
        env, env_params = envs.make(config.env_id)
        action_info = envs.action_info(env, env_params)
    return nets.ActorCritic(
        action_dim=action_info.size,
        discrete=action_info.discrete,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        torso=config.torso,
        shared_torso=config.shared_torso,
    )


def _optimizer(config: Config) -> optax.GradientTransformation:
    # The learning rate is applied by hand in update_minibatch so that it stays a traced leaf.
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.scale_by_adam(eps=1e-5)
    )


def ppo_loss(params, apply_fn, minibatch: dict, config: Config) -> tuple[jax.Array, dict]:
    """The PPO objective on one minibatch: clipped surrogate + c_v·value loss − c_e·entropy.

    Args:
      params: network parameters.
      apply_fn: ``(params, obs) -> (distribution, values)``.
      minibatch: dict with ``obs``, ``actions``, ``log_probs``, ``values``, ``advantages``,
        ``targets``, each with a leading sample axis.
      config: the PPO Config (coefficients and clip ranges).

    Returns:
      ``(loss, metrics)``.
    """
    dist, values = apply_fn(params, minibatch["obs"])
    log_probs = dist.log_prob(minibatch["actions"])
    advantages = minibatch["advantages"]
    if config.normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss, pm = ppo_clip_loss(log_probs - minibatch["log_probs"], advantages, config.clip_eps)
    if config.clip_value:
        value_loss = clipped_value_loss(
            values, minibatch["values"], minibatch["targets"], config.value_clip_eps
        ).mean()
    else:
        value_loss = 0.5 * jnp.mean((values - minibatch["targets"]) ** 2)
    entropy = dist.entropy().mean()
    loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    metrics = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": pm["approx_kl"],
        "clip_fraction": pm["clip_fraction"],
    }
    return loss, metrics


def update_minibatch(carry, minibatch, *, apply_fn, tx, config: Config, lr):
    """One gradient step on one minibatch. ``carry`` is ``(params, opt_state)``."""
    params, opt_state = carry
    grads, metrics = jax.grad(ppo_loss, has_aux=True)(params, apply_fn, minibatch, config)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, updates))
    return (params, opt_state), metrics


def make_agent(config: Config, advantage_fn: on_policy.AdvantageFn | None = None) -> Agent:
    """Builds PPO's ``init`` and ``update`` for ``config``.

    Args:
      config: the PPO Config (its static fields are read here; its numeric fields are read
        from the ``config`` argument of ``init``/``update``, so they may be traced).
      advantage_fn: replaces GAE, e.g. V-trace or λ-returns minus values; see
        ``examples/custom_advantage.py``.
    """
    advantage_fn = advantage_fn or on_policy.gae_advantages
    env, env_params, action_info = on_policy.make_env(
        config.env_id,
        config.num_envs,
        normalize_obs=config.normalize_obs,
        normalize_rewards=config.normalize_rewards,
        gamma=float(config.gamma) if isinstance(config.gamma, float | int) else 0.99,
    )
    network = make_network(config, action_info)
    apply_fn = network.apply
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_timesteps // steps_per_update

    def init(key, cfg: Config) -> PPOState:
        net_key, env_key, key = jax.random.split(key, 3)
        obs, env_state = env.reset(env_key, env_params)
        params = network.init(net_key, obs)
        return PPOState(
            params=params,
            opt_state=_optimizer(cfg).init(params),
            env_state=env_state,
            obs=obs,
            key=key,
            update_count=jnp.zeros((), jnp.int32),
        )

    def policy_fn(params, obs, key):
        dist, values = apply_fn(params, obs)
        actions = dist.sample(seed=key)
        return actions, dist.log_prob(actions), values

    def update(state: PPOState, cfg: Config):
        key, rollout_key, epoch_key = jax.random.split(state.key, 3)
        env_state, obs, rollout = on_policy.collect_rollout(
            policy_fn,
            state.params,
            env,
            env_params,
            state.env_state,
            state.obs,
            rollout_key,
            config.num_steps,
        )
        next_values = network.apply(state.params, rollout.next_obs, method=nets.ActorCritic.value)
        advantages, targets = advantage_fn(rollout, next_values, cfg.gamma, cfg.gae_lambda)
        batch = {
            "obs": rollout.obs,
            "actions": rollout.actions,
            "log_probs": rollout.log_probs,
            "values": rollout.values,
            "advantages": advantages,
            "targets": targets,
        }
        frac = 1.0 - state.update_count / num_updates
        lr = cfg.learning_rate * frac if config.anneal_lr else cfg.learning_rate
        step = functools.partial(
            update_minibatch, apply_fn=apply_fn, tx=_optimizer(cfg), config=cfg, lr=lr
        )
        (params, opt_state), metrics = on_policy.run_epochs(
            epoch_key,
            (state.params, state.opt_state),
            batch,
            step,
            config.num_epochs,
            config.num_minibatches,
        )
        metrics = {
            **on_policy.episode_metrics(rollout),
            **metrics,
            "explained_variance": on_policy.explained_variance(rollout.values, targets),
            "learning_rate": jnp.asarray(lr, jnp.float32),
        }
        new_state = PPOState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            obs=obs,
            key=key,
            update_count=state.update_count + 1,
        )
        return new_state, metrics

    return Agent(
        init=init, update=update, num_updates=num_updates, steps_per_update=steps_per_update
    )


def make_train(config: Config, advantage_fn: on_policy.AdvantageFn | None = None):
    """``train(key) -> (PPOState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)`` works."""
    return make_train_fn(make_agent(config, advantage_fn), config)
