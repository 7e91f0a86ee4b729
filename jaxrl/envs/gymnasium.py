"""Gymnasium environments behind the gymnax interface: ``make("gymnasium:CartPole-v1")``.

The environments step on the host; the agent's policy and update stay compiled.
``reset`` and ``step`` are ``jax.pure_callback`` calls into Python, so the
adapter works under ``jit``, ``vmap`` (over environments and over runs) and
``lax.scan`` like any gymnax environment, and the agents use it unchanged: a
``VecEnv`` of B adapters becomes one callback per vector step that steps the B
Gymnasium environments on the host (a synchronous vector env, as
``gymnasium.vector.SyncVectorEnv`` steps its members).

The contract of jaxrl (DESIGN.md) is kept: ``terminated`` and ``truncated``
come from Gymnasium apart (``truncated`` from its ``TimeLimit``); where an
episode ended the environment is reset on the host, the returned observation is
the new episode's first one and ``info["final_observation"]`` is the real last
observation, to bootstrap from after a truncation.

Limits: the environment state is a handle to a host object, so a checkpoint of a
Gymnasium run cannot be resumed (the host environments are gone), and each
``reset`` makes new host environments. Observations must be a Box or Discrete
space, actions Discrete or Box.
"""

from __future__ import annotations

import difflib
import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

__all__ = ["GymnasiumEnv", "GymnasiumParams", "GymnasiumState", "make_gymnasium"]


@struct.dataclass
class GymnasiumParams:
    """The time limit the Gymnasium id registers (its ``max_episode_steps``)."""

    max_steps_in_episode: int = 10_000


@struct.dataclass
class GymnasiumState:
    """A handle to one environment on the host and the steps it has taken."""

    handle: jax.Array  # [] int32: key of the host environment
    step: jax.Array  # [] int32: vector steps so far (keeps every callback's input distinct)


def _gymnasium():
    try:
        import gymnasium
    except ImportError as e:
        raise ValueError(
            "gymnasium: environments need Gymnasium: pip install 'jaxrl[gymnasium]'"
        ) from e
    return gymnasium


def _make_host(env_id: str, kwargs: dict):
    """``gymnasium.make`` with its errors turned into one-line ValueErrors."""
    gymnasium = _gymnasium()
    registry = gymnasium.envs.registration.registry
    if env_id not in registry:
        close = difflib.get_close_matches(env_id, list(registry), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise ValueError(
            f"gymnasium:{env_id}: not a registered Gymnasium id{hint}; register your own with "
            "gymnasium.register(id=..., entry_point=...) before training"
        )
    try:
        return gymnasium.make(env_id, **kwargs)
    except gymnasium.error.DependencyNotInstalled as e:
        first = (str(e).splitlines() or [""])[0]
        raise ValueError(f"gymnasium:{env_id} needs an extra package: {first}") from e
    except ImportError as e:
        raise ValueError(
            f"gymnasium:{env_id} needs an extra package ({e}); e.g. pip install 'gymnasium[box2d]'"
        ) from e


def _box(space) -> spaces.Box:
    low = np.asarray(np.broadcast_to(space.low, space.shape), np.float32)
    high = np.asarray(np.broadcast_to(space.high, space.shape), np.float32)
    return spaces.Box(low, high, tuple(space.shape), jnp.float32)


class GymnasiumEnv:
    """A registered Gymnasium id as a single gymnax-style environment (host stepping).

    Args:
      env_id: a Gymnasium id (``gymnasium.envs.registry``), e.g. ``"CartPole-v1"``.
      **make_kwargs: passed to ``gymnasium.make``.
    """

    def __init__(self, env_id: str, **make_kwargs: Any):
        gymnasium = _gymnasium()
        self.env_id = env_id
        self.make_kwargs = make_kwargs
        probe = _make_host(env_id, make_kwargs)
        obs_space, act_space = probe.observation_space, probe.action_space
        spec_steps = getattr(probe.spec, "max_episode_steps", None)
        probe.close()
        if isinstance(obs_space, gymnasium.spaces.Box):
            self._obs_space = _box(obs_space)
            self._obs_shape, self._obs_dtype = tuple(obs_space.shape), np.float32
        elif isinstance(obs_space, gymnasium.spaces.Discrete):
            self._obs_space = spaces.Discrete(int(obs_space.n))
            self._obs_shape, self._obs_dtype = (), np.int32
        else:
            raise ValueError(
                f"gymnasium:{env_id}: observation space {obs_space} is not supported; allowed "
                "are Box and Discrete (flatten others with a Gymnasium wrapper)"
            )
        if isinstance(act_space, gymnasium.spaces.Discrete):
            self._act_space = spaces.Discrete(int(act_space.n))
            self._act_start = int(act_space.start)
        elif isinstance(act_space, gymnasium.spaces.Box):
            self._act_space = _box(act_space)
            self._act_start = 0
        else:
            raise ValueError(
                f"gymnasium:{env_id}: action space {act_space} is not supported; allowed are "
                "Discrete and Box"
            )
        self._act_host_space = act_space
        self._max_steps = int(spec_steps) if spec_steps else 10_000
        self._envs: dict[int, Any] = {}
        self._ids = itertools.count()

    # -- gymnax interface -------------------------------------------------------------
    @property
    def default_params(self) -> GymnasiumParams:
        return GymnasiumParams(max_steps_in_episode=self._max_steps)

    @property
    def name(self) -> str:
        return f"gymnasium:{self.env_id}"

    @property
    def num_actions(self) -> int:
        return int(getattr(self._act_space, "n", 0))

    def observation_space(self, params: Any = None):
        return self._obs_space

    def action_space(self, params: Any = None):
        return self._act_space

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, GymnasiumState]:
        """Makes and resets a host environment seeded from ``key``: ``(obs [*O], state)``."""
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        shapes = (
            jax.ShapeDtypeStruct(key.shape[:-1] + self._obs_shape, self._obs_dtype),
            jax.ShapeDtypeStruct(key.shape[:-1], np.int32),
        )
        obs, handle = jax.pure_callback(
            self._host_reset, shapes, key.astype(jnp.uint32), vmap_method="broadcast_all"
        )
        return obs, GymnasiumState(handle=handle, step=jnp.zeros_like(handle))

    def step(self, key: jax.Array, state: GymnasiumState, action, params: Any = None):
        """One host step with auto-reset:
        ``(obs, state, reward, terminated, truncated, {"final_observation": ...})``."""
        del key  # the host environments carry their own generators, seeded at reset
        batch = state.handle.shape
        obs = jax.ShapeDtypeStruct(batch + self._obs_shape, self._obs_dtype)
        flag = jax.ShapeDtypeStruct(batch, np.bool_)
        shapes = (obs, jax.ShapeDtypeStruct(batch, np.float32), flag, flag, obs)
        next_obs, reward, terminated, truncated, final = jax.pure_callback(
            self._host_step,
            shapes,
            state.handle,
            state.step,
            jnp.asarray(action),
            vmap_method="broadcast_all",
        )
        state = GymnasiumState(handle=state.handle, step=state.step + 1)
        info = {"final_observation": final, "discount": 1.0 - terminated.astype(jnp.float32)}
        return next_obs, state, reward, terminated, truncated, info

    # -- host side --------------------------------------------------------------------
    def _host_reset(self, keys):
        shape = np.shape(keys)[:-1]
        keys = np.asarray(keys).reshape(-1, 2)
        obs, handles = [], []
        for k in keys:
            env = _make_host(self.env_id, self.make_kwargs)
            handle = next(self._ids)
            self._envs[handle] = env
            seed = int((int(k[0]) * 2654435761 + int(k[1])) % (2**31 - 1))
            o, _ = env.reset(seed=seed)
            env.action_space.seed(seed)
            obs.append(np.asarray(o, self._obs_dtype))
            handles.append(handle)
        obs = np.stack(obs).reshape(shape + self._obs_shape)
        return obs, np.asarray(handles, np.int32).reshape(shape)

    def _host_step(self, handles, steps, actions):
        handles = np.asarray(handles)
        shape = handles.shape
        flat = handles.reshape(-1)
        acts = np.asarray(actions).reshape((flat.size,) + np.shape(actions)[len(shape) :])
        n = flat.size
        obs = np.zeros((n,) + self._obs_shape, self._obs_dtype)
        final = np.zeros_like(obs)
        reward = np.zeros(n, np.float32)
        term = np.zeros(n, bool)
        trunc = np.zeros(n, bool)
        for i, h in enumerate(flat):
            env = self._envs[int(h)]
            a = acts[i]
            if isinstance(self._act_space, spaces.Discrete):
                a = int(a) + self._act_start
            else:
                a = np.asarray(a, self._act_host_space.dtype).reshape(self._act_host_space.shape)
            o, r, te, tr, _ = env.step(a)
            final[i] = np.asarray(o, self._obs_dtype)
            reward[i], term[i], trunc[i] = r, te, tr
            if te or tr:
                o, _ = env.reset()
            obs[i] = np.asarray(o, self._obs_dtype)
        return (
            obs.reshape(shape + self._obs_shape),
            reward.reshape(shape),
            term.reshape(shape),
            trunc.reshape(shape),
            final.reshape(shape + self._obs_shape),
        )

    def close(self) -> None:
        """Closes every host environment made so far."""
        for env in self._envs.values():
            env.close()
        self._envs.clear()

    def __repr__(self) -> str:
        return f"GymnasiumEnv({self.env_id!r})"


def make_gymnasium(env_id: str, **kwargs: Any) -> tuple[GymnasiumEnv, GymnasiumParams]:
    """``(env, env_params)`` for a Gymnasium id; ``max_steps_in_episode`` overrides the
    time limit field, every other keyword goes to ``gymnasium.make``."""
    steps = kwargs.pop("max_steps_in_episode", None)
    if steps is not None:
        kwargs["max_episode_steps"] = int(steps)
    env = GymnasiumEnv(env_id, **kwargs)
    return env, env.default_params
