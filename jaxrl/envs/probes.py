"""Probe environments: tiny problems whose right answer is known in closed form.

Andy Jones's five debugging environments isolate one part of an RL agent each:
value learning, observation-dependent values, discounting, action-dependent
reward (the policy) and observation × action (policy and value together). A
sixth, ``ProbeTruncation``, isolates the truncation bug: a time limit is not a
terminal state. See "Debugging RL, Without the Agonizing Pain", Andy Jones:
https://andyljones.com/posts/rl-debugging.html

Every probe observes a float32 vector of shape ``(1,)``. Episode ends are
``terminated`` (true terminals), except in ``ProbeTruncation`` where they are
``truncated`` only. Each probe comes in two action versions:

* discrete (ids ``Probe1-v0`` … ``Probe5-v0``, ``ProbeTruncation-v0``):
  ``Discrete(1)`` where the action does not matter, ``Discrete(2)`` in probes 4
  and 5;
* continuous (ids ``Probe1Continuous-v0`` … ``ProbeTruncationContinuous-v0``):
  ``Box(-1, 1, (1,))``. The action is clipped to [−1, 1]. Where it matters
  (probes 4 and 5) the reward is smooth, ``r = 1 − (a − a*)²`` with an interior
  target ``a*`` (so a tanh-squashed or deterministic actor can reach it and a
  critic's action-gradient points at it).

Analytic values (γ the discount; Q*, V* under the optimal policy):

============  ==================  ===========================  =======================
probe         observation         reward                       V*(obs)
============  ==================  ===========================  =======================
1             0                   1, one step                  1
2             ±1 (p = ½ each)     obs, one step                obs
3             0, then 1           0, then 1 (two steps)        V(0) = γ, V(1) = 1
4 discrete    0                   +1 if a = 1, −1 if a = 0     1 (a* = 1)
4 continuous  0                   1 − (a − ½)²                 1 (a* = ½)
5 discrete    ±1                  +1 if a = (obs > 0), else −1  1 (a* = 1 if obs > 0)
5 continuous  ±1                  1 − (a − ½·obs)²             1 (a* = ½·obs)
truncation    0                   1 every step, truncated      1 / (1 − γ)
                                  after N steps (default 5)
============  ==================  ===========================  =======================

Each environment exposes ``analytic_q(obs, action, gamma)``,
``analytic_value(obs, gamma)`` and ``optimal_action(obs)`` so tests can compare
a learner's estimates with these numbers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

__all__ = [
    "Probe1",
    "Probe2",
    "Probe3",
    "Probe4",
    "Probe5",
    "ProbeParams",
    "ProbeState",
    "ProbeTruncation",
    "TruncationAsTerminalValues",
    "PROBE_CLASSES",
]

# Continuous target of probe 4, and the scale of probe 5's target ½·obs.
_TARGET = 0.5


@struct.dataclass
class ProbeState(environment.EnvState):
    """State of a probe environment: the step count and the current observation."""

    time: int
    obs: jax.Array  # [1] float32


@struct.dataclass
class ProbeParams(environment.EnvParams):
    """Probe parameters: only the time limit (large, so it never fires, except in
    ``ProbeTruncation`` whose default is 5)."""

    max_steps_in_episode: int = 100


class _Probe(environment.Environment[ProbeState, ProbeParams]):
    """Shared machinery: spaces, state, step bookkeeping, analytic values."""

    #: Number of discrete actions (1 where the action does not matter).
    _num_discrete_actions: int = 1

    def __init__(self, continuous: bool = False):
        super().__init__()
        self.continuous = bool(continuous)

    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams()

    @property
    def name(self) -> str:
        suffix = "Continuous" if self.continuous else ""
        return f"{type(self).__name__}{suffix}-v0"

    @property
    def num_actions(self) -> int:
        return 1 if self.continuous else self._num_discrete_actions

    def action_space(self, params: ProbeParams | None = None):
        if self.continuous:
            return spaces.Box(-1.0, 1.0, (1,), jnp.float32)
        return spaces.Discrete(self._num_discrete_actions)

    def observation_space(self, params: ProbeParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    # Subclasses define these four.
    def _initial_obs(self, key: jax.Array) -> jax.Array:
        return jnp.zeros((1,), jnp.float32)

    def _reward(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        raise NotImplementedError

    def _next(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Returns (next observation, terminated). One-step probes repeat the
        observation: the final observation of a terminated episode is never
        bootstrapped from."""
        return obs, jnp.array(True)

    def analytic_q(self, obs: jax.Array, action: jax.Array, gamma: float) -> jax.Array:
        """Q*(obs, a) = r(obs, a) + γ·V*(next obs) for obs ``[..., 1]`` and action
        ``[...]`` (discrete) or ``[..., 1]`` (continuous); returns ``[...]``."""
        raise NotImplementedError

    def reset_env(self, key: jax.Array, params: ProbeParams) -> tuple[jax.Array, ProbeState]:
        obs = self._initial_obs(key)
        return obs, ProbeState(time=0, obs=obs)

    def step_env(
        self, key: jax.Array, state: ProbeState, action: Any, params: ProbeParams
    ) -> tuple[jax.Array, ProbeState, jax.Array, jax.Array, dict[str, Any]]:
        reward = self._reward(state.obs, self._action(action)).astype(jnp.float32)
        next_obs, terminated = self._next(state.obs)
        new_state = ProbeState(time=state.time + 1, obs=next_obs)
        return next_obs, new_state, reward, terminated, {}

    def _action(self, action: Any) -> jax.Array:
        """Scalar action: int32 (discrete) or float32 clipped to [−1, 1] (continuous)."""
        if self.continuous:
            return jnp.clip(jnp.reshape(jnp.asarray(action, jnp.float32), ()), -1.0, 1.0)
        return jnp.reshape(jnp.asarray(action), ()).astype(jnp.int32)

    def _action_batch(self, action: Any) -> jax.Array:
        """Batched version of ``_action`` for ``analytic_q``: drops the trailing
        action axis of continuous actions."""
        action = jnp.asarray(action)
        if self.continuous:
            return jnp.clip(action[..., 0].astype(jnp.float32), -1.0, 1.0)
        return action.astype(jnp.int32)

    def optimal_action(self, obs: jax.Array) -> jax.Array:
        """a*(obs) for obs ``[..., 1]``: ``[...]`` int32 (discrete) or ``[..., 1]``
        float32 (continuous). Any action is optimal where the action does not matter;
        this returns 0 there."""
        batch = jnp.shape(obs)[:-1]
        if self.continuous:
            return jnp.zeros((*batch, 1), jnp.float32)
        return jnp.zeros(batch, jnp.int32)

    def analytic_value(self, obs: jax.Array, gamma: float) -> jax.Array:
        """V*(obs) = Q*(obs, a*(obs)) for obs ``[..., 1]``; returns ``[...]``."""
        return self.analytic_q(obs, self.optimal_action(obs), gamma)


def _random_sign_obs(key: jax.Array) -> jax.Array:
    return jnp.where(jax.random.bernoulli(key, 0.5, (1,)), 1.0, -1.0).astype(jnp.float32)


class Probe1(_Probe):
    """Probe 1: a constant observation (0), reward 1, one-step episodes.

    Tests value learning alone: V*(0) = 1 for every γ. A learner that cannot fit
    this has a broken value loss or optimiser.
    """

    def _reward(self, obs, action):
        return jnp.array(1.0)

    def analytic_q(self, obs, action, gamma):
        return jnp.ones(jnp.shape(obs)[:-1], jnp.float32)


class Probe2(_Probe):
    """Probe 2: observation ±1 at random, reward = observation, one-step episodes.

    Tests that the value depends on the observation: V*(obs) = obs, so
    V*(+1) = 1 and V*(−1) = −1. Failing here while passing probe 1 points at the
    network's input path (or backprop through it).
    """

    def _initial_obs(self, key):
        return _random_sign_obs(key)

    def _reward(self, obs, action):
        return obs[0]

    def analytic_q(self, obs, action, gamma):
        return jnp.asarray(obs, jnp.float32)[..., 0]


class Probe3(_Probe):
    """Probe 3: two-step episodes, observation 0 then 1, reward 1 only at the end.

    Tests discounting and bootstrapping across a step: V*(0) = γ, V*(1) = 1. The
    first step has reward 0 and is not terminal; the second has reward 1 and
    terminates.
    """

    def _reward(self, obs, action):
        return obs[0]

    def _next(self, obs):
        terminated = obs[0] > 0.5
        return jnp.ones((1,), jnp.float32), terminated

    def analytic_q(self, obs, action, gamma):
        at_end = jnp.asarray(obs, jnp.float32)[..., 0] > 0.5
        return jnp.where(at_end, 1.0, jnp.float32(gamma)).astype(jnp.float32)


class Probe4(_Probe):
    """Probe 4: a constant observation (0), reward depends on the action, one step.

    Tests the policy alone. Discrete: 2 actions, reward +1 for action 1 and −1 for
    action 0, so a* = 1, Q*(0, 1) = 1, Q*(0, 0) = −1, V* = 1. Continuous: reward
    1 − (a − ½)² with a clipped to [−1, 1], so a* = ½ and V* = 1 (the worst action,
    a = −1, earns −1.25).
    """

    _num_discrete_actions = 2

    def _reward(self, obs, action):
        return self._reward_batch(obs[0], action)

    def _reward_batch(self, obs0, action):
        if self.continuous:
            return 1.0 - (action - _TARGET) ** 2
        return jnp.where(action == 1, 1.0, -1.0)

    def analytic_q(self, obs, action, gamma):
        obs0 = jnp.asarray(obs, jnp.float32)[..., 0]
        return jnp.broadcast_to(
            self._reward_batch(obs0, self._action_batch(action)), obs0.shape
        ).astype(jnp.float32)

    def optimal_action(self, obs):
        batch = jnp.shape(obs)[:-1]
        if self.continuous:
            return jnp.full((*batch, 1), _TARGET, jnp.float32)
        return jnp.ones(batch, jnp.int32)


class Probe5(Probe4):
    """Probe 5: observation ±1 at random, reward depends on observation × action.

    Tests policy and value together: the best action depends on the observation.
    Discrete: 2 actions, reward +1 if the action matches the observation's sign
    (action 1 for +1, action 0 for −1) and −1 otherwise, so V* = 1 for both
    observations. Continuous: reward 1 − (a − ½·obs)², so a*(obs) = ½·obs and
    V* = 1.
    """

    def _initial_obs(self, key):
        return _random_sign_obs(key)

    def _reward_batch(self, obs0, action):
        if self.continuous:
            return 1.0 - (action - _TARGET * obs0) ** 2
        return jnp.where((action == 1) == (obs0 > 0), 1.0, -1.0)

    def optimal_action(self, obs):
        obs0 = jnp.asarray(obs, jnp.float32)[..., 0]
        if self.continuous:
            return (_TARGET * obs0)[..., None]
        return (obs0 > 0).astype(jnp.int32)


class TruncationAsTerminalValues(NamedTuple):
    """Values a learner reaches on ``ProbeTruncation`` if it treats truncation as terminal."""

    td0: jax.Array  # fixed point of TD(0) with a single (aliased) observation
    monte_carlo: jax.Array  # mean discounted return-to-go over the N states visited


class ProbeTruncation(_Probe):
    """Probe for truncation handling: reward 1 forever, cut by a time limit.

    A constant observation (0), reward 1 every step, never terminated, truncated
    after ``max_steps_in_episode`` steps (N, default 5). The observation does not
    show the time, so the process the learner sees is one state with reward 1
    and no terminal: with correct truncation handling (bootstrap from V of the
    final observation) the value is

        V = 1 / (1 − γ)            (100 for γ = 0.99)

    A learner that wrongly treats truncation as terminal learns less, for
    example (γ = 0.99, N = 5):

        TD(0) fixed point   V = 1 / (1 − γ·(N − 1)/N)                 ≈ 4.808
        Monte Carlo mean    V = (1/N)·Σₖ₌₁ᴺ (1 − γᵏ)/(1 − γ)           ≈ 2.960

    (GAE/λ-return learners land between the two). ``truncation_as_terminal_values``
    computes both numbers.
    """

    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams(max_steps_in_episode=5)

    def _reward(self, obs, action):
        return jnp.array(1.0)

    def _next(self, obs):
        return obs, jnp.array(False)

    def analytic_q(self, obs, action, gamma):
        value = 1.0 / (1.0 - jnp.float32(gamma))
        return jnp.full(jnp.shape(obs)[:-1], value, jnp.float32)

    @staticmethod
    def truncation_as_terminal_values(gamma: float, max_steps: int) -> TruncationAsTerminalValues:
        """The wrong values (see the class docstring) for discount γ and time limit N."""
        gamma = jnp.float32(gamma)
        n = int(max_steps)
        td0 = 1.0 / (1.0 - gamma * (n - 1) / n)
        k = jnp.arange(1, n + 1, dtype=jnp.float32)
        mc = jnp.mean((1.0 - gamma**k) / (1.0 - gamma))
        return TruncationAsTerminalValues(td0=td0, monte_carlo=mc)


#: Probe id stem -> class; ``<stem>-v0`` is discrete, ``<stem>Continuous-v0`` continuous.
PROBE_CLASSES: dict[str, type[_Probe]] = {
    "Probe1": Probe1,
    "Probe2": Probe2,
    "Probe3": Probe3,
    "Probe4": Probe4,
    "Probe5": Probe5,
    "ProbeTruncation": ProbeTruncation,
}
