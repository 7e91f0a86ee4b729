"""The environment side of the off-policy agents: batched environments, transitions.

Continuous actions live on the unit box [−1, 1] (:func:`make_env` rescales them to the
environment's bounds). Shapes: ``B`` environments (``num_envs``), ``*O`` one observation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import buffers, envs

__all__ = [
    "BatchedEnv",
    "EpisodeSums",
    "env_step",
    "example_transition",
    "make_env",
    "random_actions",
]


class BatchedEnv(NamedTuple):
    """The batched environment of :func:`make_env` (unpacks as ``env, params, action_info``)."""

    env: Any  # steps B copies as one batch, with episode statistics
    params: Any
    action_info: Any  # of the batched environment (continuous actions on [−1, 1])


def make_env(env_id: str, num_envs: int, env_kwargs: dict | None = None) -> BatchedEnv:
    """Builds ``num_envs`` copies of ``env_id`` stepped as one batch, with episode statistics.

    Continuous actions are taken in [−1, 1] and mapped affinely to the environment's
    bounds (``RescaleAction``, after clipping to [−1, 1]), so actors, exploration noise,
    stored actions and critics all work on the unit box whatever the bounds.

    Returns:
      ``BatchedEnv(env, params, action_info)``, the action info of the (rescaled) batched env.
    """
    env, env_params = envs.make(env_id, **(env_kwargs or {}))
    info = envs.action_info(env, env_params)
    if not info.discrete:
        env = envs.ClipAction(envs.RescaleAction(env))
        unit = np.ones(info.shape, np.float32)
        info = info._replace(low=-unit, high=unit)
    env = envs.EpisodeStatistics(envs.VecEnv(env, num_envs))
    return BatchedEnv(env, env_params, info)


def example_transition(env, env_params, action_info) -> buffers.Transition:
    """One unbatched transition of zeros with the environment's shapes and dtypes."""
    obs_shape = jax.eval_shape(lambda k: env.reset(k, env_params)[0], jax.random.key(0))
    obs = jnp.zeros(obs_shape.shape[1:], obs_shape.dtype)
    if action_info.discrete:
        action = jnp.zeros((), jnp.int32)
    else:
        action = jnp.zeros(action_info.shape, jnp.float32)
    return buffers.Transition(
        obs=obs,
        action=action,
        reward=jnp.zeros((), jnp.float32),
        next_obs=obs,
        terminated=jnp.zeros((), bool),
        truncated=jnp.zeros((), bool),
    )


def random_actions(key: jax.Array, action_info, num_envs: int) -> jax.Array:
    """Uniform actions over the action space: int32 ``[B]`` or float32 ``[B, *shape]``."""
    if action_info.discrete:
        return jax.random.randint(key, (num_envs,), 0, action_info.num_actions, jnp.int32)
    low = jnp.asarray(action_info.low)
    high = jnp.asarray(action_info.high)
    u = jax.random.uniform(key, (num_envs, *action_info.shape), jnp.float32)
    return low + u * (high - low)


class EpisodeSums(NamedTuple):
    """Sums over the episodes that ended during some steps (for mean return/length)."""

    returns: jax.Array  # float32 scalar
    lengths: jax.Array  # float32 scalar
    count: jax.Array  # float32 scalar


def env_step(env, env_params, env_state, obs, actions, key):
    """Steps the batched environment once and builds the transitions to store.

    Returns:
      ``(env_state, next_obs, transitions, episode_sums)``: ``next_obs`` ``[B, *O]`` is what
      the agent observes next (reset where an episode ended); ``transitions.next_obs`` is the
      real next observation (``info["final_observation"]`` where the episode ended).
    """
    next_obs, env_state, rewards, terminated, truncated, info = env.step(
        key, env_state, actions, env_params
    )
    real_next = envs.real_next_obs(next_obs, terminated, truncated, info)
    transitions = buffers.Transition(
        obs=obs,
        action=actions,
        reward=rewards.astype(jnp.float32),
        next_obs=real_next.astype(obs.dtype),
        terminated=terminated,
        truncated=truncated,
    )
    finished = info["returned_episode"].astype(jnp.float32)
    sums = EpisodeSums(
        returns=jnp.sum(info["episode_return"] * finished),
        lengths=jnp.sum(info["episode_length"] * finished),
        count=jnp.sum(finished),
    )
    return env_state, next_obs, transitions, sums
