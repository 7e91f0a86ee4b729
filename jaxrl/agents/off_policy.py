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

Shapes: ``B`` environments (``num_envs``), ``N`` sample batch size, ``*O`` one
observation, ``D`` the action dimension of continuous actions.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl import buffers, envs
from jaxrl._config import positive_int, require

__all__ = [
    "ActFn",
    "LearnFn",
    "LearnOutput",
    "Loop",
    "OffPolicyState",
    "adam",
    "apply_updates",
    "clip_norm",
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


def make_env(env_id: str, num_envs: int, env_kwargs: dict | None = None):
    """Builds ``num_envs`` copies of ``env_id`` stepped as one batch, with episode statistics.

    Continuous actions are taken in [−1, 1] and mapped affinely to the environment's
    bounds (``RescaleAction``, after clipping to [−1, 1]), so actors, exploration noise,
    stored actions and critics all work on the unit box whatever the bounds.

    Returns:
      ``(env, env_params, action_info)``, the action info of the (rescaled) batched env.
    """
    env, env_params = envs.make(env_id, **(env_kwargs or {}))
    info = envs.action_info(env, env_params)
    if not info.discrete:
        env = envs.ClipAction(envs.RescaleAction(env))
        unit = np.ones(info.shape, np.float32)
        info = info._replace(low=-unit, high=unit)
    env = envs.EpisodeStatistics(envs.VecEnv(env, num_envs))
    return env, env_params, info


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


def validate_loop(cfg) -> None:
    """Checks the loop fields every off-policy Config has; raises ValueError naming them."""
    for name in (
        "total_timesteps",
        "num_envs",
        "buffer_size",
        "batch_size",
        "train_frequency",
        "gradient_steps",
        "steps_per_update",
    ):
        require(cfg, name, positive_int)
    per_iteration = cfg.num_envs * cfg.train_frequency
    if cfg.steps_per_update % per_iteration:
        raise ValueError(
            f"steps_per_update ({cfg.steps_per_update}) must be a multiple of num_envs * "
            f"train_frequency ({per_iteration})"
        )
    if cfg.total_timesteps < cfg.steps_per_update:
        raise ValueError(
            f"total_timesteps ({cfg.total_timesteps}) must be at least steps_per_update "
            f"({cfg.steps_per_update}), the steps of one update"
        )
    if cfg.buffer_size % cfg.num_envs or cfg.buffer_size < 2 * cfg.num_envs:
        raise ValueError(
            f"buffer_size ({cfg.buffer_size}) must be a multiple of num_envs ({cfg.num_envs}) "
            "holding at least 2 transitions per environment"
        )
    if isinstance(cfg.learning_starts, int) and cfg.learning_starts < 0:
        raise ValueError(f"learning_starts ({cfg.learning_starts}) must be >= 0")


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


def polyak_update(target: Any, online: Any, tau) -> Any:
    """Soft target update, θ' ← τ·θ + (1 − τ)·θ' (τ = 1 copies).

    See Lillicrap et al., Continuous control with deep RL: https://arxiv.org/abs/1509.02971
    """
    return jax.tree.map(lambda t, o: t + tau * (o - t), target, online)


def target_update(target: Any, online: Any, step: jax.Array, tau, interval: int) -> Any:
    """Polyak update of the target every ``interval`` steps (``step`` counts from 1).

    ``interval = 1, τ < 1`` is a soft update every step; ``interval = K, τ = 1`` is DQN's
    hard copy every K steps. ``interval`` is static (a Python int).
    """
    if interval == 1:
        return polyak_update(target, online, tau)
    due = step % interval == 0
    return jax.tree.map(lambda t, o: jnp.where(due, t + tau * (o - t), t), target, online)


def positive_or_inf(v) -> str | None:
    """Config check: a number > 0, where ``math.inf`` means "no limit"."""
    ok = isinstance(v, numbers.Real) and v > 0 and not math.isnan(v)
    return None if ok else "a number > 0 (math.inf for no limit)"


def clip_norm(max_grad_norm):
    """``max_grad_norm`` for :func:`adam`, or None (no clipping op) for a Python ``inf``.

    A traced value (a swept hyperparameter) is always applied; inf then leaves the
    gradient unchanged, as skipping does.
    """
    if isinstance(max_grad_norm, numbers.Real) and math.isinf(max_grad_norm):
        return None
    return max_grad_norm


def adam(max_grad_norm=None, eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam's direction (the step size is applied by :func:`apply_updates`, so it may be
    traced), after global-norm clipping when ``max_grad_norm`` is given.

    With or without clipping the optimiser state has the same structure (clipping and
    its stand-in, the identity, keep no state), so a state built with one works with the
    other."""
    clip = optax.identity() if max_grad_norm is None else optax.clip_by_global_norm(max_grad_norm)
    return optax.chain(clip, optax.scale_by_adam(eps=eps))


def apply_updates(params, grads, opt_state, tx, learning_rate):
    """One optimiser step θ ← θ − lr · direction; returns ``(params, opt_state)``."""
    updates, opt_state = tx.update(grads, opt_state, params)
    params = jax.tree.map(lambda p, u: p - learning_rate * u, params, updates)
    return params, opt_state


def _collect(state: OffPolicyState, cfg, *, env, env_params, buffer, act_fn, action_info, loop):
    """``train_frequency`` vector steps: act, step, store. Returns (state, sums, act metrics)."""

    def one(carry, _):
        state, sums = carry
        key, act_key, rand_key, env_key = jax.random.split(state.key, 4)
        actions, act_metrics = act_fn(state.learner, state.obs, act_key, state.env_steps, cfg)
        warmup = state.env_steps < cfg.learning_starts
        actions = jnp.where(warmup, random_actions(rand_key, action_info, loop.num_envs), actions)
        env_state, obs, transitions, step_sums = env_step(
            env, env_params, state.env_state, state.obs, actions, env_key
        )
        state = state.replace(
            buffer=buffer.add(state.buffer, transitions),
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


def _learn(state: OffPolicyState, cfg, *, buffer, learn_fn, loop, beta_fn):
    """``gradient_steps`` learning steps, each on a fresh sample. Returns (state, metrics)."""

    def one(state, _):
        key, sample_key, learn_key = jax.random.split(state.key, 3)
        beta = beta_fn(state.env_steps, cfg) if buffer.prioritized else 1.0
        sample = buffer.sample(state.buffer, sample_key, beta)
        grad_steps = state.grad_steps + 1
        out = learn_fn(state.learner, sample, learn_key, grad_steps, cfg)
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


def _iteration(
    state: OffPolicyState, cfg, *, env, env_params, action_info, buffer, act_fn, learn_fn, loop
):
    """Collect ``train_frequency`` steps, then learn if ``learning_starts`` steps were taken."""
    state, sums, act_metrics = _collect(
        state,
        cfg,
        env=env,
        env_params=env_params,
        buffer=buffer,
        act_fn=act_fn,
        action_info=action_info,
        loop=loop,
    )
    # Never sample before every row of the buffer holds a full window.
    ready = state.env_steps >= jnp.maximum(
        cfg.learning_starts, buffer.sequence_length * loop.num_envs
    )
    beta_fn = functools.partial(_anneal_beta, total_timesteps=loop.total_timesteps)
    learn = functools.partial(
        _learn, cfg=cfg, buffer=buffer, learn_fn=learn_fn, loop=loop, beta_fn=beta_fn
    )

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
    settings = dict(
        env=env,
        env_params=env_params,
        action_info=action_info,
        buffer=buffer,
        act_fn=act_fn,
        learn_fn=learn_fn,
        loop=loop,
    )

    def update(state: OffPolicyState, cfg) -> tuple[OffPolicyState, dict]:
        step = functools.partial(_iteration, cfg=cfg, **settings)
        state, outputs = jax.lax.scan(lambda s, _: step(s), state, None, length=loop.iterations)
        return state, _summarise(state, outputs, buffer)

    # One CPU device only: across several devices the run axis is sharded, and a lax.map
    # over a sharded axis ran 5x slower than the batched update (SAC, 4 seeds on 2 forced
    # host devices: 28 against 151 env steps/s in total, loaded machine).
    one_cpu = jax.default_backend() == "cpu" and jax.device_count() == 1
    return sequential_under_vmap(update) if one_cpu else update


def sequential_under_vmap(fn: Callable) -> Callable:
    """``fn`` whose ``vmap`` runs one call after another (``lax.map``) instead of batching.

    On a CPU an off-policy update batched over runs (seeds, configurations) is slower than
    the same runs one after another: its small matrix products, batched, run worse on
    XLA:CPU (jaxrl's speed suite at rejax's settings, 2 cores: SAC 2,746 env steps/s for
    one seed, 2,033 in total for 8 vmapped seeds; SAC at its defaults, 4 seeds in one
    program on a loaded 2-core machine: 129 to 132 steps/s in total mapped, 92 to 93
    batched). Mapped one after another, each run is the unbatched program of a single
    run, so ``jax.vmap(train)(keys)[i]`` equals ``train(keys[i])``. The agents use it on a
    single CPU device only (see :func:`make_update`); on accelerators it is not measured.
    """

    def call(*args):
        # Only the arrays go through custom_vmap (a Config rebuilt with flags for leaves would
        # fail its own validation); Python numbers stay static, as in an unbatched call.
        leaves, tree = jax.tree.flatten(args)
        is_array = [isinstance(x, jax.Array | np.ndarray) for x in leaves]
        out_tree = []

        def rebuild(arrays):
            it = iter(arrays)
            return jax.tree.unflatten(
                tree, [next(it) if a else x for x, a in zip(leaves, is_array, strict=True)]
            )

        @jax.custom_batching.custom_vmap
        def flat(*arrays):
            out, treedef = jax.tree.flatten(fn(*rebuild(arrays)))
            out_tree[:] = [treedef]
            return out

        @flat.def_vmap
        def _rule(axis_size, in_batched, *arrays):
            arrays = [
                x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))
                for x, b in zip(arrays, in_batched, strict=True)
            ]
            out = jax.lax.map(lambda xs: flat(*xs), arrays)
            return out, [True] * len(out)

        out = flat(*[x for x, a in zip(leaves, is_array, strict=True) if a])
        return jax.tree.unflatten(out_tree[0], out)  # out_tree is known once flat was traced

    return call
