"""Composable gymnax-style wrappers: episode statistics, observation/reward
normalisation, action clipping and rescaling, observation flattening.

Shapes: ``*B`` is ``[B]`` when the wrapped env is a ``VecEnv`` (or a wrapper
around one) and empty for a single env; ``*O`` is the shape of one observation.

Every wrapper keeps ``terminated``, ``truncated`` and the auto-reset of the env
it wraps; each state is a ``flax.struct.dataclass`` holding the inner state in
``env_state``. The statistics wrappers (``NormalizeObservation``,
``ScaleReward``) should wrap a ``VecEnv`` so that one set of statistics is
shared by the batch. Put ``EpisodeStatistics`` inside ``ScaleReward`` so that it
reports unscaled returns, e.g.
``ScaleReward(NormalizeObservation(EpisodeStatistics(VecEnv(env, 8))), 0.99)``.

As in gymnax, ``reset`` and ``step`` are jitted with the wrapper as a static
argument; inside a jitted caller they are inlined.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from jaxrl.core.normalize import (
    RewardScalerState,
    RunningStats,
    normalize,
    reward_scaler_init,
    reward_scaler_update,
    running_stats_init,
    running_stats_update,
)
from jaxrl.envs.vector import Wrapper, batch_shape

__all__ = [
    "ClipAction",
    "EpisodeStatistics",
    "EpisodeStatisticsState",
    "FlattenObservation",
    "NormalizeObservation",
    "NormalizeObservationState",
    "RescaleAction",
    "ScaleReward",
    "ScaleRewardState",
    "get_obs_stats",
]


@struct.dataclass
class EpisodeStatisticsState:
    """State of ``EpisodeStatistics``."""

    env_state: Any
    episode_return: jax.Array  # [*B] float32, undiscounted return of the running episode
    episode_length: jax.Array  # [*B] int32, steps taken in the running episode


class EpisodeStatistics(Wrapper):
    """Tracks each environment's undiscounted return and length.

    ``step`` adds to ``info``:
      * ``"returned_episode"`` [*B] bool: an episode ended at this step
        (terminated or truncated);
      * ``"episode_return"`` [*B] float32: Σ rewards of the episode that just
        ended, where ``returned_episode`` (0 elsewhere);
      * ``"episode_length"`` [*B] float32: its number of steps (0 elsewhere).

    The running sums restart with the env's auto-reset.
    """

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None, **reset_kwargs):
        obs, env_state = self._env.reset(key, params, **reset_kwargs)
        shape = batch_shape(self._env)
        state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.zeros(shape, jnp.float32),
            episode_length=jnp.zeros(shape, jnp.int32),
        )
        return obs, state

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: EpisodeStatisticsState, action: Any, params: Any = None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        new_return = state.episode_return + jnp.asarray(reward, jnp.float32)
        new_length = state.episode_length + 1
        info = {
            **info,
            "returned_episode": done,
            "episode_return": jnp.where(done, new_return, 0.0),
            "episode_length": jnp.where(done, new_length, 0).astype(jnp.float32),
        }
        state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, new_return),
            episode_length=jnp.where(done, 0, new_length),
        )
        return obs, state, reward, terminated, truncated, info


@struct.dataclass
class NormalizeObservationState:
    """State of ``NormalizeObservation``."""

    env_state: Any
    obs_stats: RunningStats  # mean/var [*O] of the observations seen


class NormalizeObservation(Wrapper):
    """Standardises observations with running statistics kept in the state.

        ô = clip((o − μ) / √(σ² + eps), −clip, clip)

    μ and σ² are the mean and variance of every observation returned by ``reset``
    and ``step`` so far (after auto-reset; the statistics merge each batch with
    ``jaxrl.core.running_stats_update``, starting from a prior of weight
    ``eps_count``). Each returned observation is normalised with the statistics
    that include it; ``info["final_observation"]`` is normalised with the same
    statistics but not merged into them.

    Args:
      env: the env to wrap (a ``VecEnv`` so the batch shares one set of statistics).
      eps: added to the variance.
      clip: bound on |ô|, or None.
      frozen: never update the statistics (for evaluation). Pass the training
        statistics to ``reset(key, params, obs_stats=...)`` (read them from a
        training state with ``get_obs_stats``).
      eps_count: weight of the initial prior (mean 0, variance 1).
    """

    def __init__(
        self,
        env: Any,
        eps: float = 1e-8,
        clip: float | None = 10.0,
        frozen: bool = False,
        eps_count: float = 1e-4,
    ):
        super().__init__(env)
        if clip is not None and not clip > 0:
            raise ValueError(f"NormalizeObservation: clip must be > 0 or None, got {clip!r}")
        if not eps >= 0:
            raise ValueError(f"NormalizeObservation: eps must be >= 0, got {eps!r}")
        self.eps = eps
        self.clip = clip
        self.frozen = bool(frozen)
        self.eps_count = eps_count

    def observation_space(self, params: Any = None) -> spaces.Box:
        shape = self._env.observation_space(self._params(params)).shape
        bound = np.inf if self.clip is None else float(self.clip)
        return spaces.Box(-bound, bound, shape, jnp.float32)

    def _update(self, stats: RunningStats, obs: jax.Array) -> RunningStats:
        return stats if self.frozen else running_stats_update(stats, obs)

    @partial(jax.jit, static_argnames=("self",))
    def reset(
        self, key: jax.Array, params: Any = None, obs_stats: RunningStats | None = None, **kwargs
    ):
        """Resets; ``obs_stats`` (optional) replaces the fresh statistics."""
        obs, env_state = self._env.reset(key, params, **kwargs)
        if obs_stats is None:
            obs_shape = jnp.shape(obs)[len(batch_shape(self._env)) :]
            obs_stats = running_stats_init(obs_shape, eps_count=self.eps_count)
        stats = self._update(obs_stats, obs)
        obs = normalize(stats, obs, self.eps, self.clip)
        return obs, NormalizeObservationState(env_state=env_state, obs_stats=stats)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: NormalizeObservationState, action: Any, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        stats = self._update(state.obs_stats, obs)
        info = {**info}
        if "final_observation" in info:
            info["final_observation"] = normalize(
                stats, info["final_observation"], self.eps, self.clip
            )
        obs = normalize(stats, obs, self.eps, self.clip)
        state = NormalizeObservationState(env_state=env_state, obs_stats=stats)
        return obs, state, reward, terminated, truncated, info


def get_obs_stats(state: Any) -> RunningStats:
    """The observation statistics inside a (nested) wrapper state.

    Follows ``env_state`` down to the first ``NormalizeObservationState``;
    raises ValueError if there is none.
    """
    while state is not None:
        if isinstance(state, NormalizeObservationState):
            return state.obs_stats
        state = getattr(state, "env_state", None)
    raise ValueError("get_obs_stats: the state holds no NormalizeObservationState")


@struct.dataclass
class ScaleRewardState:
    """State of ``ScaleReward``."""

    env_state: Any
    scaler: RewardScalerState  # running discounted returns [B] and their statistics


class ScaleReward(Wrapper):
    """Divides rewards by the running standard deviation of the discounted return.

        Gᵢ ← γ·Gᵢ + rᵢ,  r̃ᵢ = rᵢ / √(Var[G] + eps)   (G restarts after done)

    See ``jaxrl.core.reward_scaler_update`` and Engstrom et al. 2020,
    Implementation Matters in Deep Policy Gradients:
    https://arxiv.org/abs/2005.12729

    Args:
      env: the env to wrap (a ``VecEnv`` so the batch shares one statistic).
      gamma: discount γ of the running return, in [0, 1].
      eps: added to the variance.
      clip: bound on |r̃|, or None.
      eps_count: weight of the initial prior (variance 1).
    """

    def __init__(
        self,
        env: Any,
        gamma: float,
        eps: float = 1e-8,
        clip: float | None = None,
        eps_count: float = 1e-4,
    ):
        super().__init__(env)
        if isinstance(gamma, int | float) and not 0.0 <= gamma <= 1.0:
            raise ValueError(f"ScaleReward: gamma must lie in [0, 1], got {gamma!r}")
        self.gamma = gamma
        self.eps = eps
        self.clip = clip
        self.eps_count = eps_count

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None, **reset_kwargs):
        obs, env_state = self._env.reset(key, params, **reset_kwargs)
        shape = batch_shape(self._env)
        scaler = reward_scaler_init(shape[0] if shape else 1, eps_count=self.eps_count)
        return obs, ScaleRewardState(env_state=env_state, scaler=scaler)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: ScaleRewardState, action: Any, params: Any = None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        shape = jnp.shape(reward)
        scaled, scaler = reward_scaler_update(
            state.scaler,
            jnp.reshape(reward, (-1,)),
            jnp.reshape(done, (-1,)),
            self.gamma,
            eps=self.eps,
            clip=self.clip,
        )
        state = ScaleRewardState(env_state=env_state, scaler=scaler)
        return obs, state, jnp.reshape(scaled, shape), terminated, truncated, info


def _box_bounds(env: Any, params: Any, who: str) -> tuple[jax.Array, jax.Array, tuple[int, ...]]:
    space = env.action_space(params)
    if not isinstance(space, spaces.Box):
        raise ValueError(f"{who}: needs a continuous (Box) action space, got {space!r}")
    shape = tuple(space.shape)
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
    return low, high, shape


class ClipAction(Wrapper):
    """Clips continuous actions to the action space's bounds before stepping.

    a_env = clip(a, low, high)
    """

    def __init__(self, env: Any):
        super().__init__(env)
        _box_bounds(env, env.default_params, "ClipAction")

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        low, high, _ = _box_bounds(self._env, self._params(params), "ClipAction")
        return self._env.step(key, state, jnp.clip(action, low, high), params)


class RescaleAction(Wrapper):
    """Maps actions from [low, high] (default [−1, 1], a tanh policy's range) to the
    env's bounds [L, H], affinely:

        a_env = L + (a − low)·(H − L)/(high − low)

    so ``low`` ↦ L and ``high`` ↦ H. Actions outside [low, high] are not clipped
    (wrap with ``ClipAction`` outside this wrapper to clip them).
    """

    def __init__(self, env: Any, low: float = -1.0, high: float = 1.0):
        super().__init__(env)
        _box_bounds(env, env.default_params, "RescaleAction")
        if not np.all(np.asarray(low) < np.asarray(high)):
            raise ValueError(f"RescaleAction: need low < high, got low={low!r}, high={high!r}")
        self.low = low
        self.high = high

    def action_space(self, params: Any = None) -> spaces.Box:
        _, _, shape = _box_bounds(self._env, self._params(params), "RescaleAction")
        low = jnp.broadcast_to(jnp.asarray(self.low, jnp.float32), shape)
        high = jnp.broadcast_to(jnp.asarray(self.high, jnp.float32), shape)
        return spaces.Box(low, high, shape, jnp.float32)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        env_low, env_high, _ = _box_bounds(self._env, self._params(params), "RescaleAction")
        low = jnp.asarray(self.low, jnp.float32)
        high = jnp.asarray(self.high, jnp.float32)
        action = jnp.asarray(action, jnp.float32)
        env_action = env_low + (action - low) * (env_high - env_low) / (high - low)
        return self._env.step(key, state, env_action, params)


class FlattenObservation(Wrapper):
    """Flattens each observation to a vector: ``[*B, *O] -> [*B, prod(O)]`` (also
    ``info["final_observation"]``)."""

    def observation_space(self, params: Any = None) -> spaces.Box:
        space = self._env.observation_space(self._params(params))
        shape = tuple(space.shape)
        size = int(np.prod(shape, dtype=int))
        low = jnp.broadcast_to(jnp.asarray(space.low), shape).reshape(size)
        high = jnp.broadcast_to(jnp.asarray(space.high), shape).reshape(size)
        return spaces.Box(low, high, (size,), space.dtype)

    def _flatten(self, obs: jax.Array) -> jax.Array:
        lead = batch_shape(self._env)
        return jnp.reshape(obs, (*lead, -1))

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None, **reset_kwargs):
        obs, state = self._env.reset(key, params, **reset_kwargs)
        return self._flatten(obs), state

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        info = {**info}
        if "final_observation" in info:
            info["final_observation"] = self._flatten(info["final_observation"])
        return self._flatten(obs), state, reward, terminated, truncated, info
