"""Pieces the LLM trainers share: optimiser, train state, batched updates in chunks.

A trainer (``sft``, ``reward_model``, ``dpo``) is a pure ``update(state, batch) ->
(state, metrics)``; ``make_chunk`` turns it into one compiled ``lax.scan`` over
``chunk`` updates, each on a random minibatch of a dataset held on the device, and
``run_chunks`` calls that program between evaluations (the same program every time,
so it compiles once).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from jaxrl.llm.lora import only_adapters
from jaxrl.llm.tasks import TOKENIZER
from jaxrl.llm.transformer import ModelConfig

__all__ = [
    "TrainState",
    "TrainResult",
    "default_model_config",
    "make_optimizer",
    "sample_batch",
    "make_chunk",
    "run_chunks",
    "NonFiniteLoss",
    "StageInterrupted",
    "check_finite",
    "stack_rows",
    "freeze_options",
    "config_to_dict",
]


class TrainState(NamedTuple):
    """Parameters being trained and the optimiser's state."""

    params: Any
    opt_state: Any
    step: jax.Array  # [] int32


class TrainResult(NamedTuple):
    """What a trainer returns.

    ``metrics`` has one row per update (leading axis = update index, for metrics.csv);
    ``evals`` has one row per evaluation, with ``evals["step"]`` the update count at
    which it was taken; ``summary`` holds the final numbers (for summary.json).
    """

    params: Any
    model_config: ModelConfig
    metrics: dict[str, np.ndarray]  # each [num_steps]
    evals: dict[str, np.ndarray]  # each [num_evals]
    summary: dict[str, float]


def default_model_config(max_len: int = 32, **changes) -> ModelConfig:
    """The tiny default: 2 layers, width 64, 4 heads, the task tokenizer's vocabulary."""
    return ModelConfig(vocab_size=TOKENIZER.vocab_size, max_len=max_len, **changes)


def make_optimizer(
    learning_rate: float,
    num_steps: int,
    warmup_steps: int,
    weight_decay: float,
    max_grad_norm: float,
) -> optax.GradientTransformation:
    """AdamW after global-norm clipping, linear warm-up then cosine decay to 10 %."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        learning_rate,
        max(warmup_steps, 1),
        max(num_steps, warmup_steps + 1),
        end_value=0.1 * learning_rate,
    )
    return only_adapters(  # a LoRA model trains its adapters only; others train whole
        optax.chain(
            optax.clip_by_global_norm(max_grad_norm),
            optax.adamw(schedule, b1=0.9, b2=0.98, weight_decay=weight_decay),
        )
    )


def sample_batch(data, key: jax.Array, batch_size: int):
    """``batch_size`` rows of every array in ``data`` (pytree of ``[N, ...]``), with replacement."""
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    idx = jax.random.randint(key, (batch_size,), 0, n)
    return jax.tree_util.tree_map(lambda x: x[idx], data)


def _chunk_body(state, key, update, data, batch_size):
    return update(state, sample_batch(data, key, batch_size))


def make_chunk(update: Callable, batch_size: int, chunk: int) -> Callable:
    """Compiled ``chunk_fn(state, data, key) -> (state, metrics [chunk])``.

    Args:
        update: pure ``update(state, batch) -> (state, metrics)``.
        batch_size: rows per update, sampled with replacement from ``data``.
        chunk: updates per call (static: it fixes the scan length).
    """

    def chunk_fn(state, data, key):
        body = functools.partial(_chunk_body, update=update, data=data, batch_size=batch_size)
        return jax.lax.scan(body, state, jax.random.split(key, chunk))

    return jax.jit(chunk_fn)


class NonFiniteLoss(ValueError):
    """A training loss became NaN or infinite; ``metrics`` holds the updates so far."""

    def __init__(self, message: str, metrics: dict[str, np.ndarray]):
        super().__init__(message)
        self.metrics = metrics


class StageInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a training stage; ``metrics`` holds the updates finished before it."""

    def __init__(self, metrics: dict[str, np.ndarray]):
        super().__init__("interrupted")
        self.metrics = metrics
        self.updates_done = len(next(iter(metrics.values()), ()))


def stack_rows(rows: list[dict]) -> dict[str, np.ndarray]:
    """Per-chunk (or per-step) metric dicts as one ``[updates]`` array per name."""
    if not rows:
        return {}
    return {k: np.concatenate([np.atleast_1d(np.asarray(r[k])) for r in rows]) for k in rows[0]}


def check_finite(rows: list[dict], done: int) -> None:
    """Raises :class:`NonFiniteLoss` when a metric named ``*loss*`` of the last row (the
    updates before ``done``) is not finite, naming the first such update."""
    last = rows[-1]
    for name in sorted(last):
        if "loss" not in name:
            continue
        values = np.atleast_1d(np.asarray(last[name], dtype=np.float64))
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            update = done - values.size + int(bad[0]) + 1
            raise NonFiniteLoss(
                f"non-finite {name} at update {update}; stopped after writing the metrics so far",
                stack_rows(rows),
            )


def run_chunks(
    chunk_fn: Callable,
    state: TrainState,
    data,
    key: jax.Array,
    num_steps: int,
    chunk: int,
    evaluate: Callable[[Any], dict[str, float]],
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[TrainState, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Runs ``num_steps // chunk`` chunks, evaluating before the first and after each.

    ``progress_callback(step, numbers)`` receives the step count and the latest
    evaluation plus the chunk's mean training metrics (for a progress bar).

    Returns:
        ``(state, metrics, evals)``; metrics ``[num_steps]`` per key, evals ``[num_chunks + 1]``.
    """
    rows, evals = [], []
    evals.append({"step": 0, "wall_time": 0.0, **evaluate(state.params)})
    start = time.perf_counter()
    try:
        for i, k in enumerate(jax.random.split(key, num_steps // chunk)):
            state, m = chunk_fn(state, data, k)
            m = jax.device_get(m)
            rows.append(m)
            check_finite(rows, (i + 1) * chunk)
            ev = {
                "step": (i + 1) * chunk,
                "wall_time": time.perf_counter() - start,
                **evaluate(state.params),
            }
            evals.append(ev)
            if progress_callback is not None:
                progress_callback(
                    (i + 1) * chunk, {**{k2: float(np.mean(v)) for k2, v in m.items()}, **ev}
                )
    except KeyboardInterrupt:
        raise StageInterrupted(stack_rows(rows)) from None
    metrics = stack_rows(rows)
    ev_out = {k: np.asarray([e[k] for e in evals]) for k in evals[0]}
    return state, metrics, ev_out


def freeze_options(options) -> tuple:
    """A dict or iterable of (name, value) pairs as a sorted tuple of pairs (hashable)."""
    items = options.items() if isinstance(options, dict) else options
    return tuple(sorted((str(k), v) for k, v in items))


def config_to_dict(config) -> dict:
    """A JSON-ready dict of a (nested) trainer config, for ``config.json``.

    ``task_options`` pairs come back as a dict, which the config accepts again.
    """
    out = dataclasses.asdict(config)
    if "task_options" in out:
        out["task_options"] = dict(out["task_options"])
    return out
