"""Tabular TD agents: Q-learning, SARSA, Expected SARSA, Double Q-learning, n-step SARSA.

Each is a ``Config`` and ``make_train(config) -> train(key, hparams=None) -> (state, metrics)``
like the deep agents. ``train`` runs ``num_episodes`` whole episodes on a
``TabularEnv`` inside one compiled program (a ``lax.scan`` over episodes, a
``lax.while_loop`` over the steps of each), so ``jax.jit(jax.vmap(train))(keys)``
runs many seeds at once.

Static fields of ``Config`` (algorithm, env, episode counts, exploration kind,
n, step-size schedule) fix the program; the numbers (α, γ, ε, τ, …) become a
``Hyperparams`` of traced float32 scalars. To sweep them, pass a batched
``Hyperparams`` next to the keys::

    train = make_train(Config(algorithm="sarsa", env="CliffWalking"))
    hp = Config().hyperparams()._replace(alpha=jnp.array([0.1, 0.5, 0.9]))
    hp = jax.tree.map(lambda x: jnp.broadcast_to(x, (3,)), hp)
    state, metrics = jax.jit(jax.vmap(train))(jax.random.split(key, 3), hp)

The ε and τ schedules run from ``epsilon`` to ``epsilon_end`` (``temperature`` to
``temperature_end``); ``Config.hyperparams()`` sets the end to the start when the
Config leaves it None, so a sweep over a constant ε must set both.

Metrics (leading axis = episode): ``return`` (undiscounted sum of rewards),
``length`` (steps), ``greedy_value`` (expected return from the start
distribution of the greedy policy of the current Q, ties split evenly,
evaluated exactly on the env's MDP with discount γ over the episode time
limit: ``finite_horizon_evaluation``).

See Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), ch. 6–7:
http://incompleteideas.net/book/the-book-2nd.html
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core.exploration import linear_schedule
from jaxrl.tabular.dp import finite_horizon_evaluation, greedy_probs
from jaxrl.tabular.envs import (
    TABULAR_ENVS,
    EnvParams,
    EnvState,
    TabularTask,
    make_task,
    sample_from_cdf,
)
from jaxrl.tabular.updates import (
    NStepWindow,
    QTables,
    double_q_update,
    expected_sarsa_update,
    n_step_sarsa_update,
    n_step_window,
    policy_probs,
    q_learning_update,
    sarsa_update,
    step_size,
)

__all__ = ["ALGORITHMS", "Config", "Hyperparams", "make_train", "q_estimate", "TABULAR_AGENTS"]

ALGORITHMS = ("q-learning", "sarsa", "expected-sarsa", "double-q", "n-step-sarsa")
_ON_POLICY = ("sarsa", "n-step-sarsa")
_EXPLORATION = ("epsilon-greedy", "boltzmann")
_STEP_SIZES = ("constant", "visit-count")


class Hyperparams(NamedTuple):
    """The traced numbers of a ``Config`` (float32 scalars, or batched for a sweep)."""

    alpha: jax.Array  # step size α (base value for "visit-count")
    alpha_power: jax.Array  # ω in α·N(s,a)^(−ω)
    gamma: jax.Array  # discount γ
    epsilon: jax.Array  # ε at episode 0
    epsilon_end: jax.Array  # ε after `decay_episodes`
    temperature: jax.Array  # τ at episode 0
    temperature_end: jax.Array  # τ after `decay_episodes`
    decay_episodes: jax.Array  # length of the linear ε / τ ramps, in episodes
    q_init: jax.Array  # initial value of every Q(s, a)


def _check(ok: bool, field: str, value, allowed: str) -> None:
    if not ok:
        raise ValueError(f"Config.{field} = {value!r} is invalid; allowed: {allowed}")


@dataclasses.dataclass(frozen=True)
class Config:
    """A tabular TD agent. Validated on construction (``ValueError`` naming the field).

    Static (fix the compiled program): ``algorithm``, ``env``, ``num_episodes``,
    ``max_steps_per_episode`` (None: the env's time limit), ``exploration``, ``n``
    (n-step SARSA), ``step_size`` and ``track_greedy_value``. Traced (see
    ``Hyperparams``): the rest. ``gamma=None`` takes the env's discount;
    ``epsilon_end`` / ``temperature_end`` None keep ε / τ constant.
    """

    algorithm: str = "q-learning"
    env: str = "CliffWalking"
    num_episodes: int = 500
    max_steps_per_episode: int | None = None
    exploration: str = "epsilon-greedy"
    n: int = 1
    step_size: str = "constant"
    track_greedy_value: bool = True
    alpha: float = 0.5
    alpha_power: float = 0.8
    gamma: float | None = None
    epsilon: float = 0.1
    epsilon_end: float | None = None
    temperature: float = 1.0
    temperature_end: float | None = None
    decay_episodes: int | None = None
    q_init: float = 0.0

    def __post_init__(self):
        _check(self.algorithm in ALGORITHMS, "algorithm", self.algorithm, str(ALGORITHMS))
        _check(self.env in TABULAR_ENVS, "env", self.env, str(sorted(TABULAR_ENVS)))
        _check(self.num_episodes >= 1, "num_episodes", self.num_episodes, "an int >= 1")
        m = self.max_steps_per_episode
        _check(m is None or m >= 1, "max_steps_per_episode", m, "None or an int >= 1")
        _check(self.exploration in _EXPLORATION, "exploration", self.exploration, _EXPLORATION)
        _check(self.step_size in _STEP_SIZES, "step_size", self.step_size, str(_STEP_SIZES))
        _check(
            self.n == 1 or (self.algorithm == "n-step-sarsa" and self.n >= 1),
            "n",
            self.n,
            "an int >= 1 with algorithm='n-step-sarsa', else 1",
        )
        _check(0.0 < self.alpha <= 1.0, "alpha", self.alpha, "0 < alpha <= 1")
        _check(0.5 < self.alpha_power <= 1.0, "alpha_power", self.alpha_power, "(0.5, 1]")
        g = self.gamma
        _check(g is None or 0.0 <= g <= 1.0, "gamma", g, "None or 0 <= gamma <= 1")
        for name in ("epsilon", "epsilon_end"):
            v = getattr(self, name)
            _check(v is None or 0.0 <= v <= 1.0, name, v, "0 <= value <= 1")
        for name in ("temperature", "temperature_end"):
            v = getattr(self, name)
            _check(v is None or v > 0.0, name, v, "a value > 0")
        d = self.decay_episodes
        _check(d is None or d >= 1, "decay_episodes", d, "None or an int >= 1")
        _check(math.isfinite(self.q_init), "q_init", self.q_init, "a finite float")

    def hyperparams(self, task: TabularTask | None = None) -> Hyperparams:
        """The traced numbers as float32 scalars (γ from ``task`` or the env when None)."""
        if self.gamma is None:
            task = make_task(self.env) if task is None else task
            gamma = float(task.mdp.discount)
        else:
            gamma = self.gamma
        end = lambda v, start: start if v is None else v
        return Hyperparams(
            *(
                jnp.float32(v)
                for v in (
                    self.alpha,
                    self.alpha_power,
                    gamma,
                    self.epsilon,
                    end(self.epsilon_end, self.epsilon),
                    self.temperature,
                    end(self.temperature_end, self.temperature),
                    self.num_episodes if self.decay_episodes is None else self.decay_episodes,
                    self.q_init,
                )
            )
        )


class TrainState(NamedTuple):
    """What ``train`` returns besides the metrics."""

    tables: QTables
    key: jax.Array


class _Episode(NamedTuple):
    tables: QTables
    env_state: EnvState
    obs: jax.Array  # [] int32 current state
    action: jax.Array  # [] int32 next action (on-policy algorithms)
    window: NStepWindow
    key: jax.Array
    ret: jax.Array  # [] float32
    length: jax.Array  # [] int32
    done: jax.Array  # [] bool


class _Ctx(NamedTuple):
    config: Config
    task: TabularTask
    params: EnvParams
    hp: Hyperparams
    epsilon: jax.Array
    temperature: jax.Array


def q_estimate(tables: QTables, algorithm: str) -> jax.Array:
    """The agent's estimate of Q ``[S, A]``: (Q^A + Q^B)/2 for double Q-learning, else Q."""
    return (tables.q + tables.q2) / 2 if algorithm == "double-q" else tables.q


def _behaviour(ctx: _Ctx, tables: QTables, s) -> jax.Array:
    q = q_estimate(tables, ctx.config.algorithm)
    mask = ctx.task.mdp.action_mask[s]
    return policy_probs(q[s], mask, ctx.config.exploration, ctx.epsilon, ctx.temperature)


def _sample(key, probs) -> jax.Array:
    return sample_from_cdf(key, jnp.cumsum(probs, -1))


def env_step(ctx: _Ctx, ep: _Episode) -> _Episode:
    """One environment step and the algorithm's update."""
    algo, mdp = ctx.config.algorithm, ctx.task.mdp
    key, k_act, k_env, k_next, k_coin = jax.random.split(ep.key, 5)
    s = ep.obs
    a = ep.action if algo in _ON_POLICY else _sample(k_act, _behaviour(ctx, ep.tables, s))
    obs, env_state, r, term, trunc, info = ctx.task.env.step(k_env, ep.env_state, a, ctx.params)
    s_next = info["final_observation"]  # the real next state, also when the episode ended
    done = term | trunc
    discount = ctx.hp.gamma * (1.0 - term.astype(jnp.float32))
    visits = ep.tables.visits.at[s, a].add(1.0)
    tables = ep.tables._replace(visits=visits)
    hp, kind = ctx.hp, ctx.config.step_size
    alpha = step_size(visits[s, a], hp.alpha, hp.alpha_power, kind)
    mask = mdp.action_mask | mdp.terminal[:, None]
    a_next = jnp.int32(0)
    if algo in _ON_POLICY:
        a_next = _sample(k_next, _behaviour(ctx, tables, s_next))
    if algo == "q-learning":
        tables = q_learning_update(tables, s, a, r, discount, s_next, mask, alpha)
    elif algo == "sarsa":
        tables = sarsa_update(tables, s, a, r, discount, s_next, a_next, alpha)
    elif algo == "expected-sarsa":
        probs = _behaviour(ctx, tables, s_next)
        tables = expected_sarsa_update(tables, s, a, r, discount, s_next, probs, alpha)
    elif algo == "double-q":
        tables = double_q_update(tables, k_coin, s, a, r, discount, s_next, mask, alpha)
    else:
        alphas = step_size(visits, hp.alpha, hp.alpha_power, kind)
        alphas = jnp.broadcast_to(alphas, visits.shape)
        transition = (s, a, r, s_next, a_next, term, done)
        tables, window = n_step_sarsa_update(tables, ep.window, transition, hp.gamma, alphas)
        ep = ep._replace(window=window)
    return ep._replace(
        tables=tables,
        env_state=env_state,
        obs=obs,
        action=a_next,
        key=key,
        ret=ep.ret + r,
        length=ep.length + 1,
        done=done,
    )


def run_episode(ctx: _Ctx, tables: QTables, key: jax.Array) -> tuple[QTables, dict]:
    """Runs one whole episode (until terminated or truncated), updating after every step."""
    key, k_reset, k_act = jax.random.split(key, 3)
    obs, env_state = ctx.task.env.reset(k_reset, ctx.params)
    ep = _Episode(
        tables=tables,
        env_state=env_state,
        obs=obs,
        action=_sample(k_act, _behaviour(ctx, tables, obs)),
        window=n_step_window(ctx.config.n),
        key=key,
        ret=jnp.float32(0.0),
        length=jnp.int32(0),
        done=jnp.bool_(False),
    )
    ep = jax.lax.while_loop(lambda e: ~e.done, lambda e: env_step(ctx, e), ep)
    metrics = {"return": ep.ret, "length": ep.length}
    if ctx.config.track_greedy_value:
        mdp = ctx.task.mdp.replace(discount=ctx.hp.gamma)
        q = q_estimate(ep.tables, ctx.config.algorithm)
        policy = greedy_probs(q, mdp.action_mask)
        values = finite_horizon_evaluation(mdp, policy, ctx.params.max_steps_in_episode)
        metrics["greedy_value"] = mdp.initial @ values
    return ep.tables, metrics


def make_train(
    config: Config, task: TabularTask | None = None
) -> Callable[..., tuple[TrainState, dict]]:
    """Builds ``train(key, hparams=None) -> (TrainState, metrics)`` for a tabular agent.

    Args:
      config: the agent's ``Config``.
      task: the problem to train on; default ``make_task(config.env)``. Pass one to
        train on a custom ``FiniteMDP`` (wrap it in ``TabularEnv``).

    Returns:
      A pure ``train``: ``key`` is a PRNG key, ``hparams`` a ``Hyperparams`` (default
      ``config.hyperparams(task)``); metrics are ``[num_episodes]`` arrays.
    """
    task = make_task(config.env) if task is None else task
    params = task.env_params
    if config.max_steps_per_episode is not None:
        params = params.replace(max_steps_in_episode=config.max_steps_per_episode)
    default_hp = config.hyperparams(task)
    shape = (task.mdp.num_states, task.mdp.num_actions)
    if not np.asarray(task.mdp.action_mask | task.mdp.terminal[:, None]).any(-1).all():
        raise ValueError("every state of the task's MDP needs an available action")

    def train(key: jax.Array, hparams: Hyperparams | None = None) -> tuple[TrainState, dict]:
        hp = default_hp if hparams is None else Hyperparams(*map(jnp.float32, hparams))
        q0 = jnp.full(shape, hp.q_init, jnp.float32)
        q0 = jnp.where(task.mdp.terminal[:, None], 0.0, q0)  # a terminal state's value is 0
        tables = QTables(q=q0, q2=q0, visits=jnp.zeros(shape, jnp.float32))
        eps = linear_schedule(hp.epsilon, hp.epsilon_end, hp.decay_episodes)
        temp = linear_schedule(hp.temperature, hp.temperature_end, hp.decay_episodes)

        def episode(carry, i):
            tables, key = carry
            key, k_ep = jax.random.split(key)
            ctx = _Ctx(config, task, params, hp, eps(i), temp(i))
            tables, metrics = run_episode(ctx, tables, k_ep)
            return (tables, key), metrics

        (tables, key), metrics = jax.lax.scan(
            episode, (tables, key), jnp.arange(config.num_episodes)
        )
        return TrainState(tables, key), metrics

    return train


class TabularAgent(NamedTuple):
    """A registry entry: the algorithm name, its Config (with ``algorithm`` set) and make_train."""

    name: str
    config: Callable[..., Config]
    make_train: Callable[..., Callable]


def _agent(name: str) -> TabularAgent:
    def config(**kwargs) -> Config:
        return Config(algorithm=name, **kwargs)

    config.__doc__ = f"``Config(algorithm={name!r}, **kwargs)``."
    return TabularAgent(name, config, make_train)


TABULAR_AGENTS: dict[str, TabularAgent] = {name: _agent(name) for name in ALGORITHMS}
