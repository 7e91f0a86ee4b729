"""Finite MDPs as gymnax environments, and the registry of named tabular problems.

``TabularEnv`` steps any ``FiniteMDP`` with the gymnax 1.0 API
(``obs, state, reward, terminated, truncated, info`` with
``info["final_observation"]``), so the tabular agents, and any gymnax wrapper,
can run on it inside ``jax.jit``. Observations are the state index (int32 scalar).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from jaxrl.tabular.gridworlds import (
    GridLayout,
    cliff_walking_mdp,
    frozen_lake_mdp,
    maximization_bias_mdp,
    windy_gridworld_mdp,
)
from jaxrl.tabular.mdp import FiniteMDP, random_mdp, validate_mdp

__all__ = [
    "EnvState",
    "EnvParams",
    "TabularEnv",
    "sample_from_cdf",
    "TabularTask",
    "TABULAR_ENVS",
    "make_task",
]


@struct.dataclass
class EnvState(environment.EnvState):
    """The current state index and the elapsed time of the episode."""

    state: jax.Array  # [] int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """The time limit (episodes are truncated after this many steps)."""

    max_steps_in_episode: int = 100


def sample_from_cdf(key: jax.Array, cdf: jax.Array) -> jax.Array:
    """Draws an index i with probability cdf[i] − cdf[i − 1] from one uniform number.

    Inverse-CDF sampling: i = #{j : cdf[j] ≤ u}, u ~ U[0, cdf[-1]). One random
    number instead of the S Gumbel draws of ``jax.random.categorical``, which
    dominate the cost of a tabular step on CPU. Zero-probability indices are
    never drawn (their cdf equals the previous entry).

    Args:
      key: PRNG key.
      cdf: ``[*B, S]`` cumulative probabilities along the last axis.

    Returns:
      ``[*B]`` int32 indices.
    """
    total = cdf[..., -1:]
    u = jax.random.uniform(key, total.shape) * total
    idx = jnp.sum(cdf <= u, axis=-1)
    # Rounding may put u on the last boundary; the first index where the cdf reaches
    # its total is the last one with positive probability.
    last = jnp.argmax(cdf >= total, axis=-1)
    return jnp.minimum(idx, last).astype(jnp.int32)


class TabularEnv(environment.Environment[EnvState, EnvParams]):
    """A gymnax environment that samples a ``FiniteMDP``.

    s' ~ P(· | s, a); r = R(s, a, s') + reward_std(s, a)·ε with ε ~ N(0, 1);
    ``terminated`` when s' is terminal; ``truncated`` (by the gymnax base class)
    when ``max_steps_in_episode`` steps have passed. The initial state is drawn
    from ``mdp.initial``.
    """

    def __init__(
        self,
        mdp: FiniteMDP,
        name: str = "TabularMDP",
        max_steps_in_episode: int = 100,
        layout: GridLayout | None = None,
    ):
        validate_mdp(mdp)
        if max_steps_in_episode < 1:
            raise ValueError(f"`max_steps_in_episode` must be >= 1, got {max_steps_in_episode}")
        self.mdp = mdp
        self.layout = layout
        self._name = name
        self._max_steps = int(max_steps_in_episode)
        self._cdf = jnp.cumsum(mdp.transitions, -1)  # [S, A, S]
        self._initial_cdf = jnp.cumsum(mdp.initial)  # [S]
        self._noisy = bool(np.any(np.asarray(mdp.reward_std) > 0))

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self._max_steps)

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self.mdp.num_actions

    def step_env(
        self, key: jax.Array, state: EnvState, action, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[Any, Any]]:
        key_next, key_noise = jax.random.split(key)
        s = state.state
        a = jnp.asarray(action, jnp.int32)
        nxt = sample_from_cdf(key_next, self._cdf[s, a])
        reward = self.mdp.rewards[s, a, nxt]
        if self._noisy:
            noise = jax.random.normal(key_noise, (), jnp.float32)
            reward = reward + self.mdp.reward_std[s, a] * noise
        new = EnvState(time=state.time + 1, state=nxt)
        return nxt, new, reward, self.mdp.terminal[nxt], {}

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        s0 = sample_from_cdf(key, self._initial_cdf)
        return s0, EnvState(time=0, state=s0)

    def observe(self, key, state: EnvState, action, params) -> jax.Array:
        return state.state

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return self.mdp.terminal[state.state]

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.mdp.num_actions)

    def observation_space(self, params: EnvParams) -> spaces.Discrete:
        return spaces.Discrete(self.mdp.num_states)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        return spaces.Dict(
            {
                "state": spaces.Discrete(self.mdp.num_states),
                "time": spaces.Discrete(params.max_steps_in_episode + 1),
            }
        )


class TabularTask(NamedTuple):
    """A named tabular problem: its MDP, a gymnax environment that samples it, its layout."""

    name: str
    mdp: FiniteMDP
    env: TabularEnv
    env_params: EnvParams
    layout: GridLayout | None


def _task(name: str, built: tuple[FiniteMDP, GridLayout | None], max_steps: int) -> TabularTask:
    mdp, layout = built
    env = TabularEnv(mdp, name, max_steps, layout)
    return TabularTask(name, mdp, env, env.default_params, layout)


def cliff_walking(discount: float = 1.0, max_steps: int = 1000) -> TabularTask:
    """Cliff Walking 4 × 12 (Sutton & Barto example 6.6), see ``cliff_walking_mdp``."""
    return _task("CliffWalking", cliff_walking_mdp(discount), max_steps)


def frozen_lake(
    map_name: str = "4x4",
    is_slippery: bool = True,
    discount: float = 0.99,
    max_steps: int | None = None,
) -> TabularTask:
    """FrozenLake as gymnax ``FrozenLake-misc`` (time limit 100 for 4x4, 200 for 8x8)."""
    max_steps = (200 if map_name == "8x8" else 100) if max_steps is None else max_steps
    name = f"FrozenLake-{map_name}" + ("" if is_slippery else "-nonslippery")
    return _task(name, frozen_lake_mdp(map_name, is_slippery, discount=discount), max_steps)


def windy_gridworld(discount: float = 1.0, max_steps: int = 1000) -> TabularTask:
    """Windy gridworld 7 × 10 (Sutton & Barto example 6.5), see ``windy_gridworld_mdp``."""
    return _task("WindyGridworld", windy_gridworld_mdp(discount=discount), max_steps)


def maximization_bias(
    num_b_actions: int = 10, discount: float = 1.0, max_steps: int = 10
) -> TabularTask:
    """The maximization-bias MDP (Sutton & Barto example 6.7), see ``maximization_bias_mdp``."""
    built = maximization_bias_mdp(num_b_actions, discount=discount)
    return _task("MaximizationBias", built, max_steps)


def random_task(
    seed: int = 0,
    num_states: int = 10,
    num_actions: int = 3,
    discount: float = 0.9,
    branching: int | None = None,
    max_steps: int = 100,
) -> TabularTask:
    """A random MDP from ``random_mdp(jax.random.key(seed), ...)``, no terminal states."""
    mdp = random_mdp(jax.random.key(seed), num_states, num_actions, discount, branching)
    return _task("RandomMDP", (mdp, None), max_steps)


TABULAR_ENVS: dict[str, Callable[..., TabularTask]] = {
    "CliffWalking": cliff_walking,
    "FrozenLake-4x4": partial(frozen_lake, "4x4", True),
    "FrozenLake-8x8": partial(frozen_lake, "8x8", True),
    "FrozenLake-4x4-nonslippery": partial(frozen_lake, "4x4", False),
    "FrozenLake-8x8-nonslippery": partial(frozen_lake, "8x8", False),
    "WindyGridworld": windy_gridworld,
    "MaximizationBias": maximization_bias,
    "RandomMDP": random_task,
}


def make_task(name: str, **kwargs) -> TabularTask:
    """Builds the named tabular problem; keyword arguments go to its factory.

    Args:
      name: a key of ``TABULAR_ENVS``.
      **kwargs: e.g. ``discount=0.9``, ``max_steps=200``.

    Returns:
      ``TabularTask(name, mdp, env, env_params, layout)``.

    Raises:
      ValueError: if the name is unknown (the message lists the known ones).
    """
    if name not in TABULAR_ENVS:
        raise ValueError(f"unknown tabular environment {name!r}; known: {sorted(TABULAR_ENVS)}")
    return TABULAR_ENVS[name](**kwargs)
