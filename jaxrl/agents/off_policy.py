"""Pieces shared by the off-policy agents (DQN, DDPG, TD3, SAC).

One place for the environment setup, the replay buffer, the collect-then-learn
loop and the target-network updates, so that each algorithm supplies only how
it acts and how it learns from a replay sample.

The loop. One *iteration* steps the ``B`` environments ``train_frequency``
times (every transition goes into the replay buffer), then, once
``learning_starts`` environment steps have been taken, performs
``gradient_steps`` learning steps, each on a fresh sample of the buffer. One
*update* (one row of metrics, one call of ``Agent.update``) is
``steps_per_update / (B · train_frequency)`` iterations under a ``lax.scan``;
the whole run is ``total_timesteps // steps_per_update`` updates.

Before ``learning_starts`` the actions are drawn uniformly from the action
space (the warm-up fills the buffer with a random policy's data).

The pieces live by topic: the environment side in :mod:`jaxrl.agents.off_policy_env`,
the optimiser and target updates in :mod:`jaxrl.agents.off_policy_learn`, the
sequential execution of vmapped runs in :mod:`jaxrl.agents.sequential`, the Config fields
of the loop in :mod:`jaxrl.agents.off_policy_config`; this module re-exports their names.

Shapes: ``B`` environments (``num_envs``), ``N`` sample batch size, ``*O`` one
observation, ``D`` the action dimension of continuous actions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import flax
import jax
import jax.numpy as jnp

from jaxrl import buffers
from jaxrl.agents.base import Agent
from jaxrl.agents.off_policy_config import LoopConfig, validate_loop
from jaxrl.agents.off_policy_env import (
    BatchedEnv,
    EpisodeSums,
    env_step,
    example_transition,
    make_env,
    random_actions,
)
from jaxrl.agents.off_policy_learn import (
    adam,
    apply_updates,
    clip_norm,
    discount,
    polyak_update,
    positive_or_inf,
    target_update,
)
from jaxrl.agents.sequential import sequential_under_vmap

__all__ = [
    "ActFn",
    "BatchedEnv",
    "EpisodeSums",
    "LearnFn",
    "LearnOutput",
    "Loop",
    "LoopConfig",
    "LoopParts",
    "OffPolicyState",
    "adam",
    "apply_updates",
    "build_agent",
    "clip_norm",
    "discount",
    "env_step",
    "example_transition",
    "init_state",
    "make_env",
    "make_loop",
    "make_update",
    "polyak_update",
    "positive_or_inf",
    "random_actions",
    "sequential_under_vmap",
    "target_update",
    "validate_loop",
]


@flax.struct.dataclass
class OffPolicyState:
    """Everything an off-policy run carries from one update to the next."""

    learner: Any  # the algorithm's parameters, target parameters, optimiser states
    buffer: Any  # replay buffer state (flashbax)
    env_state: Any
    obs: jax.Array  # [B, *O]
    key: jax.Array
    env_steps: jax.Array  # int32 scalar: environment steps taken over all environments
    grad_steps: jax.Array  # int32 scalar: learning steps taken


class LearnOutput(NamedTuple):
    """What one learning step returns."""

    learner: Any
    metrics: dict  # scalars
    td_errors: jax.Array | None  # [N] for priority updates (None if the buffer is uniform)


class ActFn(Protocol):
    """How an algorithm acts: actions ``[B, ...]`` for observations ``[B, *O]``, plus scalar
    metrics (e.g. ε). ``env_steps`` counts the environment steps taken so far."""

    def __call__(
        self, learner: Any, obs: jax.Array, key: jax.Array, env_steps: jax.Array, cfg: Any
    ) -> tuple[jax.Array, dict]: ...


class LearnFn(Protocol):
    """How an algorithm learns from one replay sample; ``grad_steps`` counts learning steps
    from 1 (for delayed and periodic updates)."""

    def __call__(
        self,
        learner: Any,
        sample: buffers.ReplaySample,
        key: jax.Array,
        grad_steps: jax.Array,
        cfg: Any,
    ) -> LearnOutput: ...


class Loop(NamedTuple):
    """The static structure of the collect-then-learn loop."""

    num_envs: int  # B
    train_frequency: int  # vector-environment steps per iteration
    gradient_steps: int  # learning steps per iteration (after learning_starts)
    iterations: int  # iterations per update
    num_updates: int
    total_timesteps: int  # over all environments (for schedules)

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.train_frequency * self.iterations


def make_loop(cfg) -> Loop:
    """The :class:`Loop` of a Config with the standard off-policy fields."""
    per_iteration = cfg.num_envs * cfg.train_frequency
    return Loop(
        num_envs=cfg.num_envs,
        train_frequency=cfg.train_frequency,
        gradient_steps=cfg.gradient_steps,
        iterations=cfg.steps_per_update // per_iteration,
        num_updates=cfg.total_timesteps // cfg.steps_per_update,
        total_timesteps=cfg.total_timesteps,
    )


class LoopParts(NamedTuple):
    """What the collect-then-learn loop runs on, fixed when the agent is built."""

    env: Any  # the batched environment of make_env
    env_params: Any
    action_info: Any  # of the batched environment
    buffer: buffers.ReplayBuffer
    act_fn: ActFn
    learn_fn: LearnFn
    loop: Loop


def init_state(key, learner, env, env_params, buffer, action_info) -> OffPolicyState:
    """Resets the environments and builds an empty buffer around ``learner``."""
    env_key, key = jax.random.split(key)
    obs, env_state = env.reset(env_key, env_params)
    return OffPolicyState(
        learner=learner,
        buffer=buffer.init(example_transition(env, env_params, action_info)),
        env_state=env_state,
        obs=obs,
        key=key,
        env_steps=jnp.zeros((), jnp.int32),
        grad_steps=jnp.zeros((), jnp.int32),
    )


def _collect(state: OffPolicyState, cfg, parts: LoopParts):
    """``train_frequency`` vector steps: act, step, store. Returns (state, sums, act metrics)."""
    loop = parts.loop

    def one(carry, _):
        state, sums = carry
        key, act_key, rand_key, env_key = jax.random.split(state.key, 4)
        actions, act_metrics = parts.act_fn(state.learner, state.obs, act_key, state.env_steps, cfg)
        warmup = state.env_steps < cfg.learning_starts
        random = random_actions(rand_key, parts.action_info, loop.num_envs)
        actions = jnp.where(warmup, random, actions)
        env_state, obs, transitions, step_sums = env_step(
            parts.env, parts.env_params, state.env_state, state.obs, actions, env_key
        )
        state = state.replace(
            buffer=parts.buffer.add(state.buffer, transitions),
            env_state=env_state,
            obs=obs,
            key=key,
            env_steps=state.env_steps + loop.num_envs,
        )
        sums = jax.tree.map(jnp.add, sums, step_sums)
        return (state, sums), act_metrics

    zero = jnp.zeros((), jnp.float32)
    carry = (state, EpisodeSums(zero, zero, zero))
    if loop.train_frequency == 1:
        (state, sums), act_metrics = one(carry, None)
        return state, sums, act_metrics
    (state, sums), act_metrics = jax.lax.scan(one, carry, None, length=loop.train_frequency)
    return state, sums, jax.tree.map(lambda x: x[-1], act_metrics)


def _learn(state: OffPolicyState, cfg, parts: LoopParts):
    """``gradient_steps`` learning steps, each on a fresh sample. Returns (state, metrics)."""
    buffer, loop = parts.buffer, parts.loop

    def one(state, _):
        key, sample_key, learn_key = jax.random.split(state.key, 3)
        beta = 1.0
        if buffer.prioritized:
            beta = _anneal_beta(state.env_steps, cfg, loop.total_timesteps)
        sample = buffer.sample(state.buffer, sample_key, beta)
        grad_steps = state.grad_steps + 1
        out = parts.learn_fn(state.learner, sample, learn_key, grad_steps, cfg)
        buf = state.buffer
        if buffer.prioritized:
            buf = buffer.update_priorities(
                buf, sample.indices, out.td_errors, cfg.priority_alpha, cfg.priority_eps
            )
        state = state.replace(learner=out.learner, buffer=buf, key=key, grad_steps=grad_steps)
        return state, out.metrics

    if loop.gradient_steps == 1:
        return one(state, None)
    state, metrics = jax.lax.scan(one, state, None, length=loop.gradient_steps)
    return state, jax.tree.map(jnp.mean, metrics)


def _anneal_beta(env_steps, cfg, total_timesteps):
    """β rises linearly from ``cfg.priority_beta`` to 1 over the run."""
    frac = jnp.minimum(env_steps.astype(jnp.float32) / total_timesteps, 1.0)
    return cfg.priority_beta + frac * (1.0 - cfg.priority_beta)


def _iteration(state: OffPolicyState, cfg, parts: LoopParts):
    """Collect ``train_frequency`` steps, then learn if ``learning_starts`` steps were taken."""
    state, sums, act_metrics = _collect(state, cfg, parts)
    # Never sample before every row of the buffer holds a full window.
    ready = state.env_steps >= jnp.maximum(
        cfg.learning_starts, parts.buffer.sequence_length * parts.loop.num_envs
    )
    learn = functools.partial(_learn, cfg=cfg, parts=parts)

    def skip(state):
        shapes = jax.eval_shape(learn, state)[1]
        return state, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)

    state, learn_metrics = jax.lax.cond(ready, learn, skip, state)
    return state, (sums, act_metrics, learn_metrics, ready)


def _summarise(state: OffPolicyState, outputs, buffer) -> dict:
    """One update's metrics from the per-iteration outputs (see :func:`make_update`)."""
    sums, act_metrics, learn_metrics, ready = outputs
    count = sums.count.sum()
    safe = jnp.maximum(count, 1.0)
    n_learned = ready.astype(jnp.float32).sum()

    def mean_learned(v):
        # 0, not NaN, during the warm-up: NaN would read as divergence to the non-finite
        # guard of jaxrl.run (which stops a run at a non-finite loss); grad_steps says
        # whether any learning step was taken.
        total = jnp.sum(jnp.where(ready, v, 0.0))
        return total / jnp.maximum(n_learned, 1.0)

    return {
        "episode_return": jnp.where(count > 0, sums.returns.sum() / safe, jnp.nan),
        "episode_length": jnp.where(count > 0, sums.lengths.sum() / safe, jnp.nan),
        "episodes": count,
        **jax.tree.map(lambda x: x[-1], act_metrics),
        **{k: mean_learned(v) for k, v in learn_metrics.items()},
        "buffer_fill": buffer.fill(state.buffer),
        # env_steps is not a metric: the run directory's metrics.csv has it as a column.
        "grad_steps": state.grad_steps.astype(jnp.float32),
    }


def make_update(
    *,
    env,
    env_params,
    action_info,
    buffer: buffers.ReplayBuffer,
    act_fn: ActFn,
    learn_fn: LearnFn,
    loop: Loop,
) -> Callable[[OffPolicyState, Any], tuple[OffPolicyState, dict]]:
    """Builds ``update(state, cfg) -> (state, metrics)``: ``loop.iterations`` iterations.

    ``cfg`` must have ``learning_starts`` and, for a prioritised buffer, ``priority_alpha``,
    ``priority_beta`` (β's start, annealed to 1) and ``priority_eps``.

    Metrics: ``episode_return``, ``episode_length`` (means over the episodes that ended during
    the update, NaN if none), ``episodes``, ``buffer_fill``, ``grad_steps`` (learning steps
    taken so far), the act metrics of the last step, and the learn metrics averaged over the
    learning steps of the update (0 before ``learning_starts``, while ``grad_steps`` is 0).
    """
    return _make_update(LoopParts(env, env_params, action_info, buffer, act_fn, learn_fn, loop))


def _make_update(parts: LoopParts):
    def update(state: OffPolicyState, cfg) -> tuple[OffPolicyState, dict]:
        step = functools.partial(_iteration, cfg=cfg, parts=parts)
        iterations = parts.loop.iterations
        state, outputs = jax.lax.scan(lambda s, _: step(s), state, None, length=iterations)
        return state, _summarise(state, outputs, parts.buffer)

    # On a CPU, runs batched by vmap run one after another, each device its own (see
    # jaxrl.agents.sequential); accelerators keep the batched update (not measured there).
    on_cpu = jax.default_backend() == "cpu"
    return sequential_under_vmap(update) if on_cpu else update


def build_agent(
    config,
    env: BatchedEnv,
    buffer: buffers.ReplayBuffer,
    init_learner: Callable[[jax.Array, Any, buffers.Transition], tuple[Any, jax.Array]],
    act_fn: ActFn,
    learn_fn: LearnFn,
) -> Agent:
    """The :class:`~jaxrl.agents.base.Agent` of an off-policy algorithm.

    Args:
      config: a Config with the loop's fields (:func:`make_loop` reads them).
      env: the batched environment of :func:`make_env`.
      buffer: the replay buffer.
      init_learner: ``(key, cfg, example) -> (learner, key)``: the algorithm's learning
        state from an unbatched example transition of zeros, and the key left for the
        environments (the algorithm decides how it splits ``key``).
      act_fn, learn_fn: see :func:`make_update`.
    """
    loop = make_loop(config)
    parts = LoopParts(env.env, env.params, env.action_info, buffer, act_fn, learn_fn, loop)

    def init(key, cfg) -> OffPolicyState:
        example = example_transition(env.env, env.params, env.action_info)
        learner, key = init_learner(key, cfg, example)
        return init_state(key, learner, env.env, env.params, buffer, env.action_info)

    return Agent(
        init=init,
        update=_make_update(parts),
        num_updates=loop.num_updates,
        steps_per_update=loop.steps_per_update,
    )
