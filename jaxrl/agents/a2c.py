"""Advantage actor-critic (A2C): synchronous environments, one gradient step per rollout.

    L = −mean(log π(aₜ|sₜ)·Âₜ) + c_v·mean(½(V(sₜ) − Gₜ)²) − c_e·mean(H[π(·|sₜ)])

A2C is the synchronous form of A3C: ``num_envs`` environments step together
for ``num_steps`` steps, each step's advantage is an n-step return minus the
value (n = ``num_steps`` by default: every step bootstraps from the rollout's
end, the forward view of the A3C paper) or GAE(γ, λ), and the rollout feeds
one gradient step of RMSprop (as in the paper) or Adam.

See Mnih et al., Asynchronous Methods for Deep Reinforcement Learning (2016):
https://arxiv.org/abs/1602.01783, and the OpenAI Baselines note on A2C:
https://openai.com/index/openai-baselines-acktr-a2c/

Shapes: ``T`` = ``num_steps``, ``B`` = ``num_envs``.
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
    non_negative,
    one_of,
    positive,
    positive_int,
    probability,
    require,
    static,
)
from jaxrl.agents import on_policy
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.core.policy import actor_critic_loss

__all__ = [
    "A2CState",
    "Config",
    "a2c_loss",
    "make_advantage_fn",
    "make_agent",
    "make_network",
    "make_optimizer",
    "make_train",
]


def _non_negative_int(v) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
    return None if ok else "an integer >= 0"


@config
class Config:
    """A2C settings (defaults: Stable-Baselines3's A2C). Static fields fix shapes."""

    env_id: str = static("CartPole-v1", "environment id (jaxrl.envs.make)")
    total_timesteps: int = static(500_000, "environment steps over all environments")
    num_envs: int = static(8, "environments stepped as one batch")
    num_steps: int = static(5, "rollout length T per update")
    hidden_sizes: tuple[int, ...] = static((64, 64), "MLP layer widths")
    activation: str = static("tanh", "tanh or relu")
    torso: str = static("mlp", "mlp or cnn (MinAtar)")
    shared_torso: bool = static(False, "actor and critic share the torso")
    advantage: str = static("nstep", "nstep (n-step returns − V) or gae")
    n_step: int = static(0, "n of the n-step returns; 0 means num_steps")
    optimizer: str = static("rmsprop", "rmsprop or adam")
    normalize_advantages: bool = static(False, "standardise advantages per rollout")
    anneal_lr: bool = static(False, "decay the learning rate linearly to 0")
    normalize_obs: bool = static(False, "running observation normalisation")
    normalize_rewards: bool = static(False, "return-based reward scaling")
    learning_rate: float = 7e-4
    gamma: float = 0.99
    gae_lambda: float = 1.0
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    rmsprop_decay: float = 0.99
    optimizer_eps: float = 1e-5

    def validate(self):
        for name in ("total_timesteps", "num_envs", "num_steps"):
            require(self, name, positive_int)
        require(self, "n_step", _non_negative_int)
        require(self, "activation", one_of("tanh", "relu"))
        require(self, "torso", one_of("mlp", "cnn"))
        require(self, "advantage", one_of("nstep", "gae"))
        require(self, "optimizer", one_of("rmsprop", "adam"))
        for name in ("learning_rate", "max_grad_norm", "optimizer_eps"):
            require(self, name, positive)
        for name in ("gamma", "gae_lambda", "rmsprop_decay"):
            require(self, name, probability)
        require(self, "ent_coef", non_negative)
        require(self, "vf_coef", non_negative)
        batch = self.num_envs * self.num_steps
        if self.total_timesteps < batch:
            raise ValueError(
                f"total_timesteps ({self.total_timesteps}) must be at least num_envs * num_steps "
                f"({batch}), the steps of one update"
            )


@flax.struct.dataclass
class A2CState:
    """Everything an A2C run carries from one update to the next."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [B, *obs]
    key: jax.Array
    update_count: jax.Array  # int32 scalar


def make_network(config: Config, action_info=None) -> nets.ActorCritic:
    """The actor-critic network: ``apply(params, obs) -> (distribution, values)``.

    ``shared_torso`` selects one torso for both heads, else each has its own.
    """
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


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Clip by global norm, then RMSprop or Adam, without the learning rate.

    RMSprop here is PyTorch's (and Stable-Baselines3's): g / (√v + ε), ε outside
    the square root, v starting at 0. The learning rate is applied by hand in
    ``update`` so that it stays a traced leaf.
    """
    if config.optimizer == "rmsprop":
        scale = optax.scale_by_rms(
            decay=config.rmsprop_decay, eps=config.optimizer_eps, eps_in_sqrt=False
        )
    else:
        scale = optax.scale_by_adam(eps=config.optimizer_eps)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), scale)


def make_advantage_fn(config: Config) -> on_policy.AdvantageFn:
    """The :data:`~jaxrl.agents.on_policy.AdvantageFn` named by ``config.advantage``."""
    if config.advantage == "gae":
        return on_policy.gae_advantages
    n = config.n_step or config.num_steps
    return functools.partial(on_policy.n_step_advantages, n=n)


def a2c_loss(params, apply_fn, batch: dict, config: Config) -> tuple[jax.Array, dict]:
    """The A2C loss on one rollout (``core.actor_critic_loss``).

    Args:
      params: network parameters.
      apply_fn: ``(params, obs) -> (distribution, values)``.
      batch: dict of ``obs [T, B, *obs]``, ``actions [T, B, *act]``, ``advantages [T, B]``
        and ``targets [T, B]``.
      config: the Config (coefficients; ``normalize_advantages`` is read statically).

    Returns:
      ``(loss, metrics)`` with policy_loss, value_loss, entropy.
    """
    dist, values = apply_fn(params, batch["obs"])
    advantages = batch["advantages"]
    if config.normalize_advantages:
        advantages = on_policy.standardize(advantages)
    return actor_critic_loss(
        dist.log_prob(batch["actions"]),
        advantages,
        values,
        batch["targets"],
        dist.entropy(),
        config.vf_coef,
        config.ent_coef,
    )


def make_agent(config: Config, advantage_fn: on_policy.AdvantageFn | None = None) -> Agent:
    """Builds A2C's ``init`` and ``update`` for ``config``.

    Args:
      config: the Config (static fields read here, numeric ones from the ``config``
        argument of ``init``/``update``, so they may be traced).
      advantage_fn: replaces the one of :func:`make_advantage_fn`.
    """
    advantage_fn = advantage_fn or make_advantage_fn(config)
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

    def init(key, cfg: Config) -> A2CState:
        net_key, env_key, key = jax.random.split(key, 3)
        obs, env_state = env.reset(env_key, env_params)
        params = network.init(net_key, obs)
        return A2CState(
            params=params,
            opt_state=make_optimizer(cfg).init(params),
            env_state=env_state,
            obs=obs,
            key=key,
            update_count=jnp.zeros((), jnp.int32),
        )

    def policy_fn(params, obs, key):
        dist, values = apply_fn(params, obs)
        actions = dist.sample(seed=key)
        return actions, dist.log_prob(actions), values

    def update(state: A2CState, cfg: Config):
        key, rollout_key = jax.random.split(state.key)
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
        _, next_values = apply_fn(state.params, rollout.next_obs)
        advantages, targets = advantage_fn(rollout, next_values, cfg.gamma, cfg.gae_lambda)
        batch = {
            "obs": rollout.obs,
            "actions": rollout.actions,
            "advantages": advantages,
            "targets": targets,
        }
        grads, metrics = jax.grad(a2c_loss, has_aux=True)(state.params, apply_fn, batch, cfg)
        tx = make_optimizer(cfg)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        frac = 1.0 - state.update_count / num_updates
        lr = cfg.learning_rate * frac if config.anneal_lr else cfg.learning_rate
        params = optax.apply_updates(state.params, jax.tree.map(lambda u: -lr * u, updates))
        metrics = {
            **on_policy.episode_metrics(rollout),
            **metrics,
            "grad_norm": optax.global_norm(grads),
            "explained_variance": on_policy.explained_variance(rollout.values, targets),
            "learning_rate": jnp.asarray(lr, jnp.float32),
        }
        new_state = A2CState(
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
    """``train(key) -> (A2CState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)`` works."""
    return make_train_fn(make_agent(config, advantage_fn), config)
