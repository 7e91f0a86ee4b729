"""Parallelised Q-Network (PQN): Q(λ) on many environments, no replay buffer, no target network.

Gallici et al., Simplifying Deep Temporal Difference Learning (2024):
https://arxiv.org/abs/2407.04811

One update: step ``num_envs`` environments ``num_steps`` times with an ε-greedy
policy of the current Q-network, compute Q(λ) targets for the whole rollout
with the parameters that collected it, then ``num_epochs`` passes of
``num_minibatches`` gradient steps on ½·(Q(s, a) − Gᵗ)². The targets are

    Gᵗ = rₜ + γ(1 − termₜ)[(1 − λcₜ)·maxₐ Q(s'ₜ, a) + λcₜ·Gₜ₊₁],  cₜ = 1 − doneₜ (0 at t = T−1)

(:func:`jaxrl.core.lambda_returns` with ``next_values = maxₐ Q(s'ₜ, a)``), where
s'ₜ is the real next state, the final observation where the episode ended: a
truncated step bootstraps, a terminated one does not, and the recursion is cut
at every episode end. LayerNorm after every hidden layer keeps the bootstrapped
regression stable without a target network (the paper's Theorem 1).

Shapes: ``T`` rollout length (``num_steps``), ``B`` environments
(``num_envs``), ``M`` minibatches, ``A`` actions, ``*O`` one observation.

Data parallelism. ``make_agent(config, axis_name="data", num_shards=D)`` builds
the agent one device runs inside ``jax.shard_map`` over a mesh axis of D
devices: each device steps ``B / D`` of the environments, gradients and metrics
are averaged with ``pmean``. Every random draw that concerns one environment
(its reset, its steps, its ε-greedy action, the order of its samples in the
minibatches) is keyed by the environment's global index, and each minibatch
holds the same number of samples of every environment, so D devices compute
the one-device run (same global batch) up to float32 rounding; see
:mod:`jaxrl.run.data_parallel`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl import envs, nets
from jaxrl._config import config, non_negative, positive, positive_int, probability, require, static
from jaxrl.agents import on_policy
from jaxrl.agents import rollout as rollout_lib
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.agents.rollout import Rollout, episode_metrics, run_epochs, stratified_minibatches
from jaxrl.core import lambda_returns, linear_schedule

__all__ = [
    "Config",
    "PQNNetwork",
    "PQNState",
    "Rollout",
    "collect_rollout",
    "compute_targets",
    "epsilon_at",
    "make_agent",
    "make_network",
    "make_train",
    "pqn_loss",
    "stratified_minibatches",
    "update_minibatch",
]


@config
class Config:
    """PQN settings. Static fields fix shapes; the numeric ones can be swept under vmap.

    The defaults follow purejaxql's CartPole settings (32 envs × 64 steps, 4 epochs of
    16 minibatches, λ = 0.95, rewards × 0.1, learning rate decayed to 0) with two
    LayerNorm layers of 128 units, ε down to 0.05 and a learning rate of 3e-4: on
    CartPole-v1 (150k steps, 5 seeds) the IQM passed 475 after about 50k steps and ended
    at 500 (benchmarks/harness/pqn.py).
    """

    env_id: str = static("CartPole-v1", "environment id (jaxrl.envs.make)")
    total_timesteps: int = static(500_000, "environment steps over all environments")
    num_envs: int = static(32, "environments stepped as one batch")
    num_steps: int = static(64, "rollout length T per update")
    num_epochs: int = static(4, "passes over each rollout")
    num_minibatches: int = static(16, "minibatches per pass (must divide num_steps)")
    hidden_sizes: tuple[int, ...] = static((128, 128), "MLP layer widths")
    activation: str = static("relu", "a name in jaxrl.nets.ACTIVATIONS")
    torso: str = static("mlp", "mlp or cnn (MinAtar: one 16-channel 3x3 convolution first)")
    layer_norm: bool = static(True, "LayerNorm after every hidden layer (PQN's stabiliser)")
    anneal_lr: bool = static(True, "decay the learning rate linearly to 0")
    learning_rate: float = 3e-4
    gamma: float = 0.99
    lambda_: float = 0.95
    reward_scale: float = 0.1  # rewards are multiplied by this in the targets (Q learns it too)
    eps_start: float = 1.0
    eps_end: float = 0.05
    exploration_fraction: float = 0.2
    max_grad_norm: float = 10.0

    def validate(self):
        require(self, "num_epochs", positive_int)
        for name in ("exploration_fraction", "reward_scale"):
            require(self, name, positive)
        for name in ("lambda_", "eps_start", "eps_end"):
            require(self, name, probability)
        require(self, "eps_end", non_negative)
        # The loop fields, learning_rate and max_grad_norm are checked as on-policy ones are.
        on_policy.check_config(self, "num_minibatches", activations=tuple(nets.ACTIVATIONS))


class PQNNetwork(nn.Module):
    """Q(s, ·) with LayerNorm: ``__call__(obs [*N, *O]) -> [*N, A]``.

    Each hidden layer is h ← act(LayerNorm(W·h + b)); the cnn torso puts one
    16-channel 3×3 convolution (with LayerNorm) before them.
    """

    num_actions: int
    obs_ndim: int  # rank of one observation (1 for vectors, 3 for images)
    hidden_sizes: Sequence[int] = (128, 128)
    activation: str = "relu"
    torso: str = "mlp"
    layer_norm: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        act = nets.ACTIVATIONS[self.activation]
        batch = obs.shape[: obs.ndim - self.obs_ndim]
        x = jnp.asarray(obs, jnp.float32)
        if self.torso == "cnn":
            x = x.reshape((-1, *x.shape[-3:]))
            x = nn.Conv(16, (3, 3), padding="VALID")(x)
            x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        x = x.reshape((*batch, -1))
        for size in self.hidden_sizes:
            x = nn.Dense(size)(x)
            x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        return nn.Dense(self.num_actions)(x)


@flax.struct.dataclass
class PQNState:
    """Everything a PQN run carries from one update to the next (``Bₗ`` local envs)."""

    params: Any
    opt_state: Any
    env_state: Any  # leaves [Bₗ, ...]
    obs: jax.Array  # [Bₗ, *O]
    key: jax.Array  # the same on every device
    update_count: jax.Array  # int32 scalar


def make_network(config: Config, action_info=None, obs_ndim: int | None = None) -> PQNNetwork:
    """The Q-network of ``config`` (action space and observation rank looked up if not given)."""
    if action_info is None or obs_ndim is None:
        env, env_params = envs.make(config.env_id)
        action_info = envs.action_info(env, env_params)
        obs_ndim = len(env.observation_space(env_params).shape)
    if not action_info.discrete:
        raise ValueError(
            f"PQN needs a discrete action space; {config.env_id!r} has a continuous one "
            "(use ppo, ddpg, td3 or sac)"
        )
    return PQNNetwork(
        num_actions=action_info.num_actions,
        obs_ndim=obs_ndim,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        torso=config.torso,
        layer_norm=config.layer_norm,
    )


def epsilon_at(update_count, cfg: Config, num_updates: int) -> jax.Array:
    """ε at the start of update ``update_count``: linear from eps_start to eps_end over
    ``exploration_fraction`` of the updates, then constant."""
    duration = cfg.exploration_fraction * num_updates
    return linear_schedule(cfg.eps_start, cfg.eps_end, duration)(update_count)


def _greedy_or_random(key, q_values, epsilon):
    """One environment's ε-greedy action from its own key (ties: the first maximum)."""
    explore_key, action_key = jax.random.split(key)
    explore = jax.random.uniform(explore_key) < epsilon
    random_action = jax.random.randint(action_key, (), 0, q_values.shape[-1])
    return jnp.where(explore, random_action, jnp.argmax(q_values)).astype(jnp.int32)


def collect_rollout(
    apply_fn, params, env, env_params, env_state, obs, key, epsilon, env_ids, num_envs, num_steps
) -> tuple[Any, jax.Array, Rollout]:
    """Steps the local environments ``num_steps`` times with the ε-greedy policy.

    Args:
      apply_fn: ``(params, obs [N, *O]) -> Q [N, A]``.
      env: the local environments, taking one key each (``rollout.make_env(per_env_keys=True)``).
      env_state, obs: the local environments' states and observations ``[Bₗ, ...]``.
      key: the rollout key (the same on every device).
      epsilon: ε of this rollout.
      env_ids: ``[Bₗ]`` global indices of the local environments.
      num_envs: ``B``, all environments over all devices.

    Returns:
      ``(env_state, obs, rollout)`` after the rollout (``log_probs`` and ``values`` zero).
    """

    def act(params, obs, key):  # one environment: obs [1, *O], its own key
        action = _greedy_or_random(key, apply_fn(params, obs)[0], epsilon)[None]
        return action, jnp.zeros(1), jnp.zeros(1)

    return rollout_lib.collect_rollout(
        act, params, env, env_params, env_state, obs, key, num_steps,
        env_ids=env_ids, num_envs=num_envs,
    )  # fmt: skip


def compute_targets(
    apply_fn, params, rollout: Rollout, gamma, lambda_, reward_scale=1.0
) -> jax.Array:
    """Q(λ) targets ``[T, Bₗ]`` (module docstring), bootstrapping from maxₐ Q(s'ₜ, a), with
    the rewards multiplied by ``reward_scale`` (the Q-values learn the scaled return)."""
    next_values = jnp.max(apply_fn(params, rollout.next_obs), axis=-1)
    done = jnp.logical_or(rollout.terminated, rollout.truncated)
    rewards = rollout.rewards * reward_scale
    return lambda_returns(rewards, next_values, rollout.terminated, done, gamma, lambda_)


def pqn_loss(params, apply_fn, minibatch: dict) -> tuple[jax.Array, dict]:
    """½·mean((Q(s, a) − G)²) over a minibatch with ``obs``, ``actions``, ``targets``."""
    q = apply_fn(params, minibatch["obs"])
    q_taken = jnp.take_along_axis(q, minibatch["actions"][..., None], axis=-1)[..., 0]
    td = q_taken - minibatch["targets"]
    loss = 0.5 * jnp.mean(jnp.square(td))
    return loss, {"td_loss": loss, "q_mean": jnp.mean(q_taken)}


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    # The learning rate is applied in update_minibatch so that it stays a traced leaf.
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.scale_by_adam())


def _pmean(tree, axis_name):
    return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def update_minibatch(carry, minibatch, *, apply_fn, tx, lr, axis_name=None):
    """One gradient step; with ``axis_name`` the gradients are averaged over the devices."""
    params, opt_state = carry
    grads, metrics = jax.grad(pqn_loss, has_aux=True)(params, apply_fn, minibatch)
    grads, metrics = _pmean((grads, metrics), axis_name)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
    return (params, opt_state), metrics


def make_agent(config: Config, *, axis_name: str | None = None, num_shards: int = 1) -> Agent:
    """Builds PQN's ``init`` and ``update``.

    Args:
      config: the PQN Config (static fields read here; numeric ones from the ``cfg``
        argument of ``init``/``update``, so they may be traced).
      axis_name: the mesh axis the agent is split over (inside ``shard_map``), or None.
      num_shards: devices on that axis; each steps ``num_envs / num_shards`` environments.
    """
    num_envs, local_envs = config.num_envs, on_policy.local_num_envs(config, num_shards)
    env, env_params, action_info = rollout_lib.make_env(
        config.env_id, local_envs, per_env_keys=True
    )
    obs_ndim = len(env.observation_space(env_params).shape)  # one env's (VecEnv forwards it)
    network = make_network(config, action_info, obs_ndim)
    apply_fn = network.apply
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_timesteps // steps_per_update

    def init(key, cfg: Config) -> PQNState:
        net_key, env_key, key = jax.random.split(key, 3)
        ids = rollout_lib.local_env_ids(local_envs, axis_name)
        obs, env_state = env.reset(rollout_lib.env_keys(env_key, num_envs, ids), env_params)
        params = network.init(net_key, obs)
        return PQNState(
            params=params,
            opt_state=_optimizer(cfg).init(params),
            env_state=env_state,
            obs=obs,
            key=key,
            update_count=jnp.zeros((), jnp.int32),
        )

    def update(state: PQNState, cfg: Config):
        key, rollout_key, epoch_key = jax.random.split(state.key, 3)
        ids = rollout_lib.local_env_ids(local_envs, axis_name)
        epsilon = epsilon_at(state.update_count, cfg, num_updates)
        env_state, obs, rollout = collect_rollout(
            apply_fn,
            state.params,
            env,
            env_params,
            state.env_state,
            state.obs,
            rollout_key,
            epsilon,
            ids,
            num_envs,
            config.num_steps,
        )
        targets = compute_targets(
            apply_fn, state.params, rollout, cfg.gamma, cfg.lambda_, cfg.reward_scale
        )
        batch = {"obs": rollout.obs, "actions": rollout.actions, "targets": targets}
        frac = 1.0 - state.update_count / num_updates
        lr = cfg.learning_rate * frac if config.anneal_lr else cfg.learning_rate
        step = functools.partial(
            update_minibatch, apply_fn=apply_fn, tx=_optimizer(cfg), lr=lr, axis_name=axis_name
        )
        (params, opt_state), metrics = run_epochs(
            epoch_key,
            (state.params, state.opt_state),
            batch,
            step,
            config.num_epochs,
            config.num_minibatches,
            ids,
        )
        metrics = {
            **episode_metrics(rollout, axis_name),
            **metrics,
            "epsilon": jnp.asarray(epsilon, jnp.float32),
            "learning_rate": jnp.asarray(lr, jnp.float32),
        }
        new_state = PQNState(
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


def make_train(config: Config):
    """``train(key) -> (PQNState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)`` works."""
    return make_train_fn(make_agent(config), config)
