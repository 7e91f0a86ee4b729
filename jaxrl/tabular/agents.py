"""Tabular TD agents: Q-learning, SARSA, Expected SARSA, Double Q-learning, n-step SARSA.

Each keeps the algorithm contract of the deep agents (see ``jaxrl.agents.base``):
a ``Config`` (a pytree: static fields fix the program, numeric fields are traced
leaves), ``make_agent(config) -> EpisodeAgent(init, update, num_updates,
steps_per_update)`` with one update = one whole episode, so ``jaxrl.run`` can
run it in chunks, and ``make_train(config) -> train(key, cfg=config)``, pure::

    train = make_train(Config(algorithm="sarsa", env="CliffWalking"))
    state, metrics = jax.jit(jax.vmap(train))(keys)                 # many seeds
    configs = stack_configs([Config(algorithm="sarsa", alpha=a) for a in (0.1, 0.5, 0.9)])
    state, metrics = jax.jit(jax.vmap(train))(keys, configs)        # and step sizes

(``jaxrl.run.stack_configs`` stacks the traced fields to ``[R]`` arrays.) An
episode is a ``lax.while_loop`` over its steps inside the ``lax.scan`` over
episodes.

Metrics (leading axis = episode): ``episode_return`` (undiscounted sum of
rewards), ``episode_length`` (steps), and with ``track_greedy_value``
``greedy_value``: the expected return from the start distribution of the greedy
policy of the current Q (ties split evenly), evaluated exactly on the env's MDP
with discount γ over the episode time limit (``finite_horizon_evaluation``; its
cost grows with S² × time limit per episode).

See Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), ch. 6–7:
http://incompleteideas.net/book/the-book-2nd.html
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl._config import config, in_range, one_of, positive, positive_int, require, static
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

__all__ = [
    "ALGORITHMS",
    "Config",
    "EpisodeAgent",
    "algorithm_entry",
    "TrainState",
    "TabularAgent",
    "make_agent",
    "make_train",
    "q_estimate",
    "TABULAR_AGENTS",
]

ALGORITHMS = ("q-learning", "sarsa", "expected-sarsa", "double-q", "n-step-sarsa")
_ON_POLICY = ("sarsa", "n-step-sarsa")


def _non_negative_int(v) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
    return None if ok else "an integer >= 0"


def _finite(v) -> str | None:
    return None if isinstance(v, int | float) and np.isfinite(v) else "a finite number"


@config
class Config:
    """A tabular TD agent; validated on construction (``ValueError`` naming the field).

    With ``schedule="linear"`` ε (or τ) moves linearly from ``epsilon`` to
    ``epsilon_end`` (``temperature`` to ``temperature_end``) over the first
    ``decay_fraction`` of the episodes; with ``"constant"`` the ``*_end`` fields
    are unused. ``step_size="visit-count"`` uses α·N(s, a)^(−alpha_power).
    """

    algorithm: str = static("q-learning", "one of " + ", ".join(ALGORITHMS))
    env: str = static("CliffWalking", "a name in jaxrl.tabular.TABULAR_ENVS")
    num_episodes: int = static(500, "episodes per run (one update = one episode)")
    max_steps_per_episode: int = static(0, "time limit (truncation); 0: the env's own")
    exploration: str = static("epsilon-greedy", "epsilon-greedy or boltzmann")
    schedule: str = static("constant", "constant or linear ε / τ")
    n: int = static(1, "steps of n-step SARSA")
    step_size: str = static("constant", "constant or visit-count")
    track_greedy_value: bool = static(True, "evaluate the greedy policy after every episode")
    alpha: float = 0.5
    alpha_power: float = 0.8
    gamma: float = 1.0
    epsilon: float = 0.1
    epsilon_end: float = 0.01
    temperature: float = 1.0
    temperature_end: float = 0.1
    decay_fraction: float = 1.0
    q_init: float = 0.0

    def validate(self):
        require(self, "algorithm", one_of(*ALGORITHMS))
        require(self, "env", one_of(*TABULAR_ENVS))
        require(self, "num_episodes", positive_int)
        require(self, "max_steps_per_episode", _non_negative_int)
        require(self, "exploration", one_of("epsilon-greedy", "boltzmann"))
        require(self, "schedule", one_of("constant", "linear"))
        require(self, "n", positive_int)
        if self.n != 1 and self.algorithm != "n-step-sarsa":
            raise ValueError(
                f"Config.n = {self.n} is only used by algorithm='n-step-sarsa'; "
                f"leave it at 1 for {self.algorithm!r}"
            )
        require(self, "step_size", one_of("constant", "visit-count"))
        require(self, "alpha", in_range(0.0, 1.0, low_open=True))
        require(self, "alpha_power", in_range(0.5, 1.0, low_open=True))
        for name in ("gamma", "epsilon", "epsilon_end"):
            require(self, name, in_range(0.0, 1.0))
        for name in ("temperature", "temperature_end", "decay_fraction"):
            require(self, name, positive)
        require(self, "q_init", _finite)


class TrainState(NamedTuple):
    """The agent's state between episodes."""

    tables: QTables
    key: jax.Array
    episode: jax.Array  # [] int32, episodes done


class EpisodeAgent(NamedTuple):
    """``init`` / ``update`` for ``jaxrl.run``: the fields of ``jaxrl.agents.base.Agent``."""

    init: Callable  # (key, config) -> TrainState
    update: Callable  # (TrainState, config) -> (TrainState, metrics): one episode
    num_updates: int  # episodes per run
    steps_per_update: int  # 1: progress is counted in episodes (their lengths vary)


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
    config: Config  # read for its static fields
    cfg: Config  # read for its numbers (traced leaves under a sweep)
    task: TabularTask
    params: EnvParams
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
    discount = ctx.cfg.gamma * (1.0 - term.astype(jnp.float32))
    visits = ep.tables.visits.at[s, a].add(1.0)
    tables = ep.tables._replace(visits=visits)
    cfg, kind = ctx.cfg, ctx.config.step_size
    alpha = step_size(visits[s, a], cfg.alpha, cfg.alpha_power, kind)
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
        alphas = step_size(visits, cfg.alpha, cfg.alpha_power, kind)
        alphas = jnp.broadcast_to(alphas, visits.shape)
        transition = (s, a, r, s_next, a_next, term, done)
        tables, window = n_step_sarsa_update(tables, ep.window, transition, cfg.gamma, alphas)
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
    metrics = {"episode_return": ep.ret, "episode_length": ep.length}
    if ctx.config.track_greedy_value:
        mdp = ctx.task.mdp.replace(discount=ctx.cfg.gamma)
        q = q_estimate(ep.tables, ctx.config.algorithm)
        policy = greedy_probs(q, mdp.action_mask)
        values = finite_horizon_evaluation(mdp, policy, ctx.params.max_steps_in_episode)
        metrics["greedy_value"] = mdp.initial @ values
    return ep.tables, metrics


def _schedules(config: Config, cfg: Config, episode: jax.Array) -> tuple[jax.Array, jax.Array]:
    """ε and τ for this episode."""
    if config.schedule == "constant":
        return jnp.asarray(cfg.epsilon, jnp.float32), jnp.asarray(cfg.temperature, jnp.float32)
    duration = jnp.maximum(cfg.decay_fraction * config.num_episodes, 1.0)
    eps = linear_schedule(cfg.epsilon, cfg.epsilon_end, duration)(episode)
    temp = linear_schedule(cfg.temperature, cfg.temperature_end, duration)(episode)
    return eps, temp


def make_agent(config: Config, task: TabularTask | None = None) -> EpisodeAgent:
    """Builds ``init`` and ``update`` (one episode) for ``config``.

    Args:
      config: the Config; its static fields are read here, its numbers from the ``cfg``
        argument of ``init`` / ``update`` (so they may be traced and vmapped).
      task: the problem; default ``make_task(config.env)``. Pass one to train on a custom
        ``FiniteMDP`` (wrapped in a ``TabularEnv``).

    Returns:
      ``EpisodeAgent(init, update, num_updates=num_episodes, steps_per_update=1)``.
    """
    task = make_task(config.env) if task is None else task
    params = task.env_params
    if config.max_steps_per_episode:
        params = params.replace(max_steps_in_episode=config.max_steps_per_episode)
    shape = (task.mdp.num_states, task.mdp.num_actions)
    if not np.asarray(task.mdp.action_mask | task.mdp.terminal[:, None]).any(-1).all():
        raise ValueError("every state of the task's MDP needs an available action")

    def init(key: jax.Array, cfg: Config) -> TrainState:
        q0 = jnp.full(shape, cfg.q_init, jnp.float32)
        q0 = jnp.where(task.mdp.terminal[:, None], 0.0, q0)  # a terminal state's value is 0
        tables = QTables(q=q0, q2=q0, visits=jnp.zeros(shape, jnp.float32))
        return TrainState(tables=tables, key=key, episode=jnp.int32(0))

    def update(state: TrainState, cfg: Config) -> tuple[TrainState, dict]:
        key, k_ep = jax.random.split(state.key)
        eps, temp = _schedules(config, cfg, state.episode)
        ctx = _Ctx(config, cfg, task, params, eps, temp)
        tables, metrics = run_episode(ctx, state.tables, k_ep)
        return TrainState(tables, key, state.episode + 1), metrics

    return EpisodeAgent(init, update, config.num_episodes, 1)


def make_train(
    config: Config, task: TabularTask | None = None
) -> Callable[..., tuple[TrainState, dict]]:
    """Builds ``train(key, cfg=config) -> (TrainState, metrics)``: all episodes in one scan.

    Args:
      config: the agent's ``Config``.
      task: the problem to train on; default ``make_task(config.env)``.

    Returns:
      A pure ``train``; ``cfg`` may carry traced numbers (e.g. a batch of step sizes under
      ``vmap``) and must share ``config``'s static fields. Metrics are ``[num_episodes]``.
    """
    agent = make_agent(config, task)

    def train(key: jax.Array, cfg: Config = config) -> tuple[TrainState, dict]:
        state = agent.init(key, cfg)
        return jax.lax.scan(lambda s, _: agent.update(s, cfg), state, None, agent.num_updates)

    return train


@functools.cache
def _algorithm_config(name: str) -> type:
    @config
    class AlgorithmConfig(Config):
        algorithm: str = static(name, "the tabular algorithm")

    AlgorithmConfig.__name__ = AlgorithmConfig.__qualname__ = "Config"
    AlgorithmConfig.__module__ = f"jaxrl.tabular.{name}"
    AlgorithmConfig.__doc__ = f"{Config.__doc__.rstrip()}\n\n    Here ``algorithm`` is {name!r}."
    return AlgorithmConfig


@dataclasses.dataclass(frozen=True)
class TabularAgent:
    """A registry entry: the name, a Config factory (``algorithm`` set), make_train, make_agent.

    It reads like an algorithm module of ``jaxrl.agents`` (``get_algorithm`` returns
    it): ``Config`` is :class:`Config` with ``algorithm`` defaulting to ``name``, and
    ``__name__`` ends in the name.
    """

    name: str
    config: Callable[..., Config]
    make_train: Callable[..., Callable]
    make_agent: Callable[..., EpisodeAgent]

    @property
    def Config(self) -> type:  # noqa: N802 (read like a module's Config class)
        return _algorithm_config(self.name)

    @property
    def __name__(self) -> str:
        return f"jaxrl.tabular.{self.name}"


def _agent(name: str) -> TabularAgent:
    def config(**kwargs) -> Config:
        return Config(algorithm=name, **kwargs)

    config.__doc__ = f"``Config(algorithm={name!r}, **kwargs)``."
    return TabularAgent(name, config, make_train, make_agent)


TABULAR_AGENTS: dict[str, TabularAgent] = {name: _agent(name) for name in ALGORITHMS}


def algorithm_entry(name: str) -> TabularAgent:
    """The registry entry of ``name`` (a ``ValueError`` lists the known ones)."""
    if name not in TABULAR_AGENTS:
        raise ValueError(f"unknown tabular algorithm {name!r}; known: {', '.join(ALGORITHMS)}")
    return TABULAR_AGENTS[name]
