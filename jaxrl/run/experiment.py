"""Running an agent for many runs (seeds × configurations) in one compiled program.

The runs are one ``vmap`` axis, sharded across ``jax.devices()`` when there are
several. Updates run in chunks (one compiled program reused for every chunk,
whatever its length) through the host loop of :mod:`jaxrl.run.loop`, so a progress
bar moves, a checkpoint lands and non-finite losses are caught between chunks; what
stays here is the run axis: its sharding, padding and orbax checkpoints. Compile time
and run time are measured apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrl.agents.base import Agent
from jaxrl.run.loop import History, RunInterrupted, first_non_finite, run_loop

__all__ = [
    "NonFiniteError",
    "RunInterrupted",
    "RunResult",
    "make_chunk_fn",
    "run_seeds",
    "seed_keys",
    "stack_configs",
]


class RunResult(NamedTuple):
    """What :func:`run_seeds` returns."""

    state: Any  # final agent state, leaves [R, ...]
    metrics: dict[str, np.ndarray]  # each [R, U]
    seeds: list[int]  # the seed of each run
    steps_per_update: int
    compile_s: float  # compiling init and the chunk program
    run_s: float  # executing them
    resumed_from: int  # updates restored from a checkpoint (0 for a fresh run)
    devices: int = 1  # devices holding the runs' state (run axis or data-parallel split)


class NonFiniteError(RuntimeError):
    """A loss or a parameter became NaN or infinite."""

    def __init__(self, message: str, metrics: dict[str, np.ndarray], updates_done: int):
        super().__init__(message)
        self.metrics = metrics
        self.updates_done = updates_done


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """One PRNG key per seed, ``[S, 2]``."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def stack_configs(configs: Sequence[Any]) -> Any:
    """One Config whose traced leaves are stacked ``[R]`` (static fields must agree)."""
    return jax.tree.map(lambda *xs: jnp.asarray(np.stack([np.asarray(x) for x in xs])), *configs)


def make_chunk_fn(agent: Agent, chunk_updates: int) -> Callable:
    """``chunk(state, config, n) -> (state, metrics, params_finite)`` running ``n`` updates.

    ``n ≤ chunk_updates`` is traced, so one compiled program serves every chunk
    length; metrics go into a buffer of ``chunk_updates`` rows whose first ``n``
    rows are filled.
    """

    def chunk(state, config, n):
        _, metric_shapes = jax.eval_shape(agent.update, state, config)
        buffers = jax.tree.map(
            lambda s: jnp.zeros((chunk_updates,) + s.shape, s.dtype), metric_shapes
        )

        def body(i, carry):
            state, buffers = carry
            state, metrics = agent.update(state, config)
            buffers = jax.tree.map(lambda b, m: b.at[i].set(m), buffers, metrics)
            return state, buffers

        state, buffers = jax.lax.fori_loop(0, n, body, (state, buffers))
        return state, buffers, _params_finite(state)

    return chunk


def _params_finite(state) -> jax.Array:
    params = getattr(state, "params", None)
    leaves = [x for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.floating)]
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _runs_sharding(num_runs: int):
    """A 1-D mesh over all devices for the run axis, or None with one device."""
    devices = jax.devices()
    if jax.process_count() == 1:
        # Fewer runs than devices: one run per device on the first num_runs devices (no
        # padded copies); a single run stays on one device, unbatched.
        devices = devices[: max(1, num_runs)]
    if len(devices) < 2:
        return None, num_runs
    padded = math.ceil(num_runs / len(devices)) * len(devices)
    mesh = Mesh(np.array(devices), ("runs",))
    return NamedSharding(mesh, PartitionSpec("runs")), padded


def _pad_runs(tree, padded: int):
    def pad(x):
        x = jnp.asarray(x)
        extra = padded - x.shape[0]
        if extra == 0:
            return x
        return jnp.concatenate([x, jnp.repeat(x[:1], extra, axis=0)], axis=0)

    return jax.tree.map(pad, tree)


def run_seeds(
    agent: Agent,
    config: Any,
    seeds: Sequence[int],
    *,
    config_axis: int | None = None,
    chunk_updates: int | None = None,
    on_chunk: Callable[[int, dict[str, np.ndarray], Any], None] | None = None,
    checkpointer: Any = None,
    shard: bool = True,
    describe_run: Callable[[int], str] | None = None,
    on_start: Callable[[int], None] | None = None,
    evaluate: Callable[[int, Any], None] | None = None,
) -> RunResult:
    """Trains ``agent`` once per entry of ``seeds``, all runs in one vmapped program.

    Args:
      agent: from the algorithm's ``make_agent(config)``.
      config: the Config, shared by every run (``config_axis=None``) or with traced leaves
        stacked ``[R]``, one per run (``config_axis=0``, see :func:`stack_configs`).
      seeds: one integer seed per run.
      chunk_updates: updates per chunk (default: about 20 chunks per run).
      on_chunk: called after every chunk with ``(updates_done, metrics_so_far, state)``,
        each metric ``[R, updates_done]``.
      checkpointer: a :class:`jaxrl.run.checkpoint.Checkpointer`; the run resumes from its
        newest intact checkpoint and saves after every chunk.
      shard: shard the run axis across ``jax.devices()`` when there are several.
      describe_run: ``r -> text`` naming run r's configuration in error messages.
      on_start: called with the updates already done once compiling is over and just
        before the first chunk runs (a progress rate then excludes compile time).
      evaluate: called after every chunk with ``(updates_done, state)``, before the
        chunk's checkpoint and ``on_chunk`` (e.g. :class:`jaxrl.run.evaluate.TrainingEvaluation`).

    Returns:
      A :class:`RunResult`.

    Raises:
      NonFiniteError: a metric whose name contains "loss", or a parameter, became
        non-finite; the error names the update, the metric and the run, and carries
        the metrics so far. The last checkpoint saved is the last good state.
      RunInterrupted: Ctrl-C (SIGINT) during a chunk; carries the metrics of the chunks
        done, whose last checkpoint is on disk when this is raised.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    num_runs = len(seeds)
    total = agent.num_updates
    chunk_updates = min(chunk_updates or max(1, math.ceil(total / 20)), max(total, 1))

    sharding, padded = _runs_sharding(num_runs) if shard else (None, num_runs)
    keys = _pad_runs(seed_keys(seeds), padded)
    in_config = _pad_runs(config, padded) if config_axis is not None else config
    if sharding is not None:
        keys = _global_array(keys, sharding)
        if config_axis is not None:
            in_config = jax.tree.map(lambda x: _global_array(x, sharding), in_config)

    init_runs = _init_each_run(agent, config_axis)
    chunk_runs = _over_runs(
        make_chunk_fn(agent, chunk_updates), (0, config_axis, None), single=padded == 1
    )
    if sharding is None:
        init_fn = jax.jit(init_runs)
        chunk_fn = jax.jit(chunk_runs, donate_argnums=0)
    else:
        # Every output leaf has the run axis first: shard it; the shared config is replicated.
        replicated = NamedSharding(sharding.mesh, PartitionSpec())
        cfg_sharding = sharding if config_axis is not None else replicated
        init_fn = jax.jit(init_runs, in_shardings=(sharding, cfg_sharding), out_shardings=sharding)
        chunk_fn = jax.jit(
            chunk_runs,
            in_shardings=(sharding, cfg_sharding, replicated),
            out_shardings=sharding,
            donate_argnums=0,
        )
    abstract_state = jax.eval_shape(init_fn, keys, in_config)
    _, metric_shapes = jax.eval_shape(
        jax.vmap(agent.update, in_axes=(0, config_axis)), abstract_state, in_config
    )
    # One host buffer per metric for the whole run, filled chunk by chunk (no re-concatenation).
    history = History(
        total,
        axis=1,
        arrays={
            k: np.zeros((padded, total) + v.shape[1:], v.dtype) for k, v in metric_shapes.items()
        },
    )
    run_s, compile_s = 0.0, 0.0
    restored = None
    if checkpointer is not None:
        restored = checkpointer.restore(
            abstract_state, {k: v.dtype for k, v in metric_shapes.items()}
        )
    if restored is not None:
        state, done = restored.state, min(restored.updates_done, total)
        if sharding is not None:
            state = jax.device_put(state, sharding)
        padded_metrics = {k: _pad_np(np.asarray(v), padded) for k, v in restored.metrics.items()}
        history.add(0, done, padded_metrics)
        history.done = done
    else:
        t0 = time.perf_counter()
        init = init_fn.lower(keys, in_config).compile()
        compile_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        state = jax.block_until_ready(init(keys, in_config))
        run_s += time.perf_counter() - t0
    resumed_from = history.done
    compiled = None
    if resumed_from < total:  # a finished run is not compiled again
        t0 = time.perf_counter()
        compiled = chunk_fn.lower(state, in_config, jnp.int32(chunk_updates)).compile()
        compile_s += time.perf_counter() - t0
    if on_start is not None:
        on_start(resumed_from)

    def advance(state, t, n):
        return compiled(state, in_config, jnp.int32(n))  # (state, metrics, params finite)

    def check(iv):
        def fail(what, update, run):
            metrics = {k: v[:num_runs] for k, v in iv.history.items()}
            _fail(what, update, run, seeds, describe_run, metrics, iv.done)

        bad = first_non_finite({k: v[:num_runs] for k, v in iv.metrics.items()}, axis=1)
        if bad is not None:
            name, (run,), u = bad
            fail(name, iv.start + u + 1, run)
        finite = np.asarray(iv.extra)[:num_runs]
        if not np.all(finite):
            fail("parameters", None, int(np.argwhere(~finite)[0][0]))

    def save(iv):
        checkpointer.save(iv.done, iv.state, iv.history)

    def report(iv):
        on_chunk(iv.done, {k: v[:num_runs] for k, v in iv.history.items()}, iv.state)

    try:
        state, _, loop_s = run_loop(
            advance,
            state,
            history=history,
            interval=chunk_updates,
            check=check,
            evaluate=(lambda iv: evaluate(iv.done, iv.state)) if evaluate is not None else None,
            save=save if checkpointer is not None else None,
            report=report if on_chunk is not None else None,
            to_host=_to_host,
        )
    except RunInterrupted as e:
        if checkpointer is not None:
            checkpointer.wait()
        metrics = {k: v[:num_runs] for k, v in e.metrics.items()}
        raise RunInterrupted(str(e), metrics, e.updates_done) from None
    if checkpointer is not None:
        checkpointer.wait()
    return RunResult(
        state=jax.tree.map(lambda x: x[:num_runs], state),
        metrics={k: v[:num_runs] for k, v in history.upto(total).items()},
        seeds=seeds,
        steps_per_update=agent.steps_per_update,
        compile_s=compile_s,
        run_s=run_s + loop_s,
        resumed_from=resumed_from,
        devices=_devices_of(state),
    )


def _over_runs(fn: Callable, in_axes: tuple, single: bool) -> Callable:
    """``jax.vmap(fn, in_axes)`` over the run axis; for a single run, ``fn`` on that run.

    The single-run form strips the run axis from the mapped arguments and puts it back
    on every output: the same numbers, but unbatched matrix products. Under a ``vmap``
    of size 1 every product becomes a batched one, which XLA:CPU (jax 0.10.2) runs
    markedly slower: DQN CartPole at rejax's settings took 33.7 s for 100k steps that
    way and 22.4 s unbatched (2 CPU cores, quiet).
    """
    if not single:
        return jax.vmap(fn, in_axes=in_axes)

    def one(*args):
        args = [
            a if axis is None else jax.tree.map(lambda x: x[0], a)
            for a, axis in zip(args, in_axes, strict=True)
        ]
        return jax.tree.map(lambda x: x[None], fn(*args))

    return one


def _init_each_run(agent: Agent, config_axis: int | None) -> Callable:
    """``(keys [R], config) -> state [R, ...]``: ``agent.init`` for one run after another.

    A ``lax.map`` rather than a ``vmap``: the same numbers, but the orthogonal
    initialisers stay unbatched. A batched one is a batched LAPACK QR, which jaxlib
    (0.10.2, CPU) spreads over the intra-op thread pool; two of them running at once on
    a 2-thread pool can each wait for the other's thread and hang for ever. ``init`` is
    a small part of a run, so running it sequentially costs little.
    """
    if config_axis is None:
        return lambda keys, config: jax.lax.map(lambda k: agent.init(k, config), keys)
    return lambda keys, config: jax.lax.map(lambda kc: agent.init(*kc), (keys, config))


def _devices_of(state) -> int:
    """Devices holding the state: the run axis's mesh, or a data-parallel agent's (1 if neither)."""
    leaves = [x for x in jax.tree.leaves(state) if isinstance(x, jax.Array)]
    return max(1, len({d for x in leaves for d in x.sharding.device_set}))


def _global_array(x, sharding) -> jax.Array:
    """A run-sharded array built from the same host data on every process (multi-host safe)."""
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _to_host(tree):
    """Fetches arrays to the host; across hosts every process gathers every run's rows."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def _pad_np(x: np.ndarray, padded: int) -> np.ndarray:
    extra = padded - x.shape[0]
    return x if extra <= 0 else np.concatenate([x, np.repeat(x[:1], extra, axis=0)], axis=0)


def _fail(what, update, run, seeds, describe_run, metrics, done):
    where = f"at update {update}" if update is not None else f"by update {done}"
    desc = describe_run(run) if describe_run else ""
    raise NonFiniteError(
        f"non-finite {what} {where} (run {run}, seed {seeds[run]}{', ' + desc if desc else ''}); "
        f"stopped after writing the metrics so far",
        metrics,
        done,
    )
