"""Brax environments behind the gymnax interface: ``make("brax:inverted_pendulum")``.

Brax's physics is JAX, so the environment steps inside the agent's compiled
program like a gymnax one. The adapter adds what jaxrl's contract needs and
Brax's ``Env`` leaves to its training wrappers: a time limit that *truncates*
(``truncated``, bootstrap) apart from Brax's ``done`` (``terminated``), an
auto-reset, and ``info["final_observation"]``.

Ids: ``brax:NAME`` uses the ``positional`` pipeline (fast to compile and run on a
CPU); ``brax:NAME:BACKEND`` picks another (``generalized``, ``spring``, ``mjx``).
The time limit is 1000 steps, as in Brax's own training setups (override with
``max_steps_in_episode``). Actions are in [−1, 1]ᴰ.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

__all__ = ["BraxEnv", "BraxParams", "BraxState", "make_brax"]

BACKENDS = ("positional", "generalized", "spring", "mjx")


@struct.dataclass
class BraxParams:
    """The time limit (episodes are truncated after this many steps)."""

    max_steps_in_episode: int = 1000


@struct.dataclass
class BraxState:
    """Brax's own state and the steps of the running episode."""

    inner: Any  # brax.envs.State
    time: jax.Array  # [] int32


def _brax_envs():
    try:
        from brax import envs as brax_envs
    except ImportError as e:
        raise ValueError("brax: environments need Brax: pip install 'jaxrl[brax]'") from e
    return brax_envs


class BraxEnv:
    """A Brax environment as a single gymnax-style environment (compiled stepping).

    Args:
      name: a Brax environment name (``brax.envs.get_environment``), e.g. ``"hopper"``.
      backend: the physics pipeline, one of ``BACKENDS``.
      **kwargs: passed to ``brax.envs.get_environment``.
    """

    def __init__(self, name: str, backend: str = "positional", **kwargs: Any):
        brax_envs = _brax_envs()
        known = sorted(getattr(brax_envs, "_envs", {}))
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"brax:{name}: unknown Brax environment{hint}; known: {', '.join(known)}"
            )
        if backend not in BACKENDS:
            raise ValueError(
                f"brax:{name}:{backend}: unknown backend; allowed: {', '.join(BACKENDS)}"
            )
        self.brax_name, self.backend = name, backend
        self._env = brax_envs.get_environment(name, backend=backend, **kwargs)
        self._obs_size = int(self._env.observation_size)
        self._act_size = int(self._env.action_size)

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    @property
    def name(self) -> str:
        return f"brax:{self.brax_name}"

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self._act_size,), jnp.float32)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, BraxState]:
        inner = self._env.reset(key)
        return inner.obs, BraxState(inner=inner, time=jnp.int32(0))

    def step(self, key: jax.Array, state: BraxState, action, params: Any = None):
        """One step with auto-reset: ``(obs, state, reward, terminated, truncated, info)``."""
        params = self.default_params if params is None else params
        inner = self._env.step(state.inner, jnp.asarray(action, jnp.float32))
        time = state.time + 1
        terminated = inner.done > 0.5
        truncated = jnp.logical_and(time >= params.max_steps_in_episode, ~terminated)
        done = jnp.logical_or(terminated, truncated)
        # The auto-reset, as in gymnax: a fresh state where the episode ended.
        fresh = self._env.reset(key)
        nxt = jax.tree.map(lambda f, s: jnp.where(done, f, s), fresh, inner)
        info = {
            "final_observation": inner.obs,
            "discount": 1.0 - terminated.astype(jnp.float32),
        }
        state = BraxState(inner=nxt, time=jnp.where(done, 0, time))
        reward = jnp.asarray(inner.reward, jnp.float32)
        return nxt.obs, state, reward, terminated, truncated, info

    def __repr__(self) -> str:
        return f"BraxEnv({self.brax_name!r}, backend={self.backend!r})"


def make_brax(spec: str, **kwargs: Any) -> tuple[BraxEnv, BraxParams]:
    """``(env, env_params)`` for ``NAME`` or ``NAME:BACKEND``; ``max_steps_in_episode``
    sets the time limit, other keywords go to ``brax.envs.get_environment``."""
    name, _, backend = spec.partition(":")
    steps = kwargs.pop("max_steps_in_episode", None)
    env = BraxEnv(name, backend or "positional", **kwargs)
    params = env.default_params
    if steps is not None:
        params = params.replace(max_steps_in_episode=int(steps))
    return env, params
