"""A batch of environments stepped as one (``VecEnv``), and the wrapper base class.

Shapes: ``B`` is the number of environments, ``*O`` the shape of one observation.

Every environment here follows the gymnax 1.0 interface::

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

with auto-reset: when an episode ends (``terminated or truncated``) the returned
``obs``/``state`` already belong to the next episode, and
``info["final_observation"]`` holds the real last observation of the episode
that ended (bootstrap from its value when ``truncated``).
"""

from __future__ import annotations

import numbers
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["VecEnv", "Wrapper", "batch_shape", "real_next_obs"]


class Wrapper:
    """Base class of jaxrl's wrappers: holds the inner env and forwards attribute
    access to it (``observation_space``, ``action_space``, ``num_actions``,
    ``default_params``, ``num_envs`` …), so a wrapper can stand where the env stood.
    """

    def __init__(self, env: Any):
        self._env = env

    def __getattr__(self, name: str) -> Any:
        # Guard: during copy/unpickling ``_env`` is not set yet and would recurse.
        if name == "_env" or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def env(self) -> Any:
        """The wrapped environment."""
        return self._env

    @property
    def unwrapped(self) -> Any:
        """The innermost environment (through wrappers and ``VecEnv``)."""
        env = self._env
        while isinstance(env, Wrapper):
            env = env._env
        return env

    def _params(self, params: Any) -> Any:
        return self.default_params if params is None else params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"


def batch_shape(env: Any) -> tuple[int, ...]:
    """``(B,)`` for a ``VecEnv`` (or a wrapper around one), ``()`` for a single env."""
    num_envs = getattr(env, "num_envs", None)
    return () if num_envs is None else (int(num_envs),)


class VecEnv(Wrapper):
    """B copies of an environment stepped as one batch (``jax.vmap`` inside).

    Each environment gets its own key, ``jax.random.split(key, B)[i]``, at reset
    and at every step, so ``VecEnv`` equals stepping the B environments one by
    one with those keys. ``params`` are shared by the batch.

    Args:
      env: a gymnax-style environment (single, unbatched).
      num_envs: B, a Python int ≥ 1.

    ``reset(key, params) -> (obs [B, *O], state)`` and
    ``step(key, state, actions [B, ...], params) -> (obs [B, *O], state,
    reward [B] float32, terminated [B] bool, truncated [B] bool, info)``, where every
    entry of ``info`` gains the leading axis B (``info["final_observation"]``
    is ``[B, *O]``). Spaces (``observation_space``, ``action_space``) are those of
    one environment.
    """

    def __init__(self, env: Any, num_envs: int):
        if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral):
            raise ValueError(f"VecEnv: num_envs must be an int >= 1, got {num_envs!r}")
        if num_envs < 1:
            raise ValueError(f"VecEnv: num_envs must be an int >= 1, got {num_envs!r}")
        if getattr(env, "num_envs", None) is not None:
            raise ValueError(
                f"VecEnv: env is already batched (num_envs={env.num_envs}); wrap a single env"
            )
        super().__init__(env)
        self.num_envs = int(num_envs)

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        """Resets all B environments; returns ``(obs [B, *O], state)``."""
        params = self._params(params)
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self._env.reset, in_axes=(0, None))(keys, params)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        """Steps all B environments with ``action [B, ...]`` (auto-reset per env)."""
        params = self._params(params)
        for leaf in jax.tree_util.tree_leaves(action):
            if jnp.ndim(leaf) < 1 or jnp.shape(leaf)[0] != self.num_envs:
                raise ValueError(
                    f"VecEnv.step: `action` has shape {jnp.shape(leaf)}; its leading axis "
                    f"must equal num_envs ({self.num_envs})"
                )
        keys = jax.random.split(key, self.num_envs)
        obs, state, reward, terminated, truncated, info = jax.vmap(
            self._env.step, in_axes=(0, 0, 0, None)
        )(keys, state, action, params)
        return (
            obs,
            state,
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(terminated).astype(bool),
            jnp.asarray(truncated).astype(bool),
            info,
        )

    def __repr__(self) -> str:
        return f"VecEnv({self._env!r}, num_envs={self.num_envs})"


def real_next_obs(next_obs: jax.Array, terminated, truncated, info: dict) -> jax.Array:
    """The real next state s'ₜ ``[B, ...]``: ``info["final_observation"]`` where step t ended
    an episode (``next_obs`` is then already the reset one), ``next_obs`` elsewhere."""
    done = jnp.logical_or(terminated, truncated)
    mask = done.reshape(done.shape + (1,) * (next_obs.ndim - done.ndim))
    return jnp.where(mask, info["final_observation"], next_obs)
