"""Running an agent over many seeds in one compiled program, in chunks of updates.

The seeds are one ``vmap`` axis. Updates run in chunks (one compiled program
reused for every chunk, whatever its length), so a progress bar moves between
chunks and a run directory can be written as the run goes. Compile time and run
time are measured apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.agents.base import Agent

__all__ = ["RunResult", "make_chunk_fn", "run_seeds", "seed_keys"]


class RunResult(NamedTuple):
    """What :func:`run_seeds` returns."""

    state: Any  # final agent state, leaves [S, ...]
    metrics: dict[str, np.ndarray]  # each [S, U]
    seeds: list[int]
    steps_per_update: int
    compile_s: float  # compiling init and the chunk program
    run_s: float  # executing them


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """One PRNG key per seed, ``[S, 2]``."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def make_chunk_fn(agent: Agent, chunk_updates: int) -> Callable:
    """``chunk(state, config, n) -> (state, metrics)``: ``n ≤ chunk_updates`` updates.

    ``n`` is traced, so one compiled program serves every chunk length; metrics
    are written into a buffer of ``chunk_updates`` rows whose first ``n`` rows
    are filled.
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

        return jax.lax.fori_loop(0, n, body, (state, buffers))

    return chunk


def run_seeds(
    agent: Agent,
    config: Any,
    seeds: Sequence[int],
    *,
    chunk_updates: int | None = None,
    on_chunk: Callable[[int, dict[str, np.ndarray], Any], None] | None = None,
    state: Any = None,
    start_update: int = 0,
    previous_metrics: dict[str, np.ndarray] | None = None,
) -> RunResult:
    """Trains ``agent`` once per seed, all seeds in one vmapped program.

    Args:
      agent: from the algorithm's ``make_agent(config)``.
      config: the Config (shared by all seeds).
      seeds: integer seeds, one run each.
      chunk_updates: updates per chunk (default: about 20 chunks per run).
      on_chunk: called after every chunk with ``(updates_done, metrics_so_far, state)``, where
        each metric is ``[S, updates_done]`` (for progress bars, run directories, checkpoints).
      state, start_update, previous_metrics: resume from a saved state after
        ``start_update`` updates (see :mod:`jaxrl.run.checkpoint`).

    Returns:
      A :class:`RunResult`.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    total = agent.num_updates
    chunk_updates = chunk_updates or max(1, math.ceil(total / 20))
    chunk_updates = min(chunk_updates, max(total, 1))
    keys = seed_keys(seeds)

    t0 = time.perf_counter()
    init = jax.jit(jax.vmap(agent.init, in_axes=(0, None))).lower(keys, config).compile()
    compile_s = time.perf_counter() - t0
    run_s = 0.0
    if state is None:
        t0 = time.perf_counter()
        state = jax.block_until_ready(init(keys, config))
        run_s += time.perf_counter() - t0

    chunk = jax.vmap(make_chunk_fn(agent, chunk_updates), in_axes=(0, None, None))
    t0 = time.perf_counter()
    compiled = jax.jit(chunk).lower(state, config, jnp.int32(chunk_updates)).compile()
    compile_s += time.perf_counter() - t0

    collected: list[dict[str, np.ndarray]] = []
    if previous_metrics:
        collected.append({k: np.asarray(v) for k, v in previous_metrics.items()})
    done = start_update
    while done < total:
        n = min(chunk_updates, total - done)
        t0 = time.perf_counter()
        state, buffers = compiled(state, config, jnp.int32(n))
        buffers = jax.device_get(buffers)
        run_s += time.perf_counter() - t0
        collected.append({k: np.asarray(v)[:, :n] for k, v in buffers.items()})
        done += n
        if on_chunk is not None:
            on_chunk(done, _concat(collected), state)
    return RunResult(
        state=state,
        metrics=_concat(collected),
        seeds=seeds,
        steps_per_update=agent.steps_per_update,
        compile_s=compile_s,
        run_s=run_s,
    )


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not chunks:
        return {}
    return {k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}
