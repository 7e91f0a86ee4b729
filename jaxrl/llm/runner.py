"""The one host loop of every LLM stage: compiled calls, evaluations, checkpoints, resume.

A stage (SFT, reward model, DPO, GRPO, RLHF) hands :func:`run_stage` a compiled
``advance(state, t) -> (state, metrics)`` that performs ``updates_per_call`` updates
starting at update ``t`` (a ``lax.scan`` chunk for SFT/RM/DPO, one step for GRPO/RLHF).
The host loop is :func:`jaxrl.run.loop.run_loop`, the one ``jaxrl train`` runs on: it
copies metrics to the host once per evaluation interval and stops on a non-finite loss
(:class:`NonFiniteLoss`) or Ctrl-C (:class:`StageInterrupted`). This module adds what
is a stage's own: the evaluation before the first update and after every ``eval_every``
updates and — given a ``checkpoint_dir`` — an atomic checkpoint after each evaluation.

Data order is a pure function of (data key, update index): :func:`batch_indices` draws
update ``t``'s rows from epoch-wise permutations without replacement, so the update
count saved in a checkpoint is also the position in the data stream, and a resumed run
sees exactly the batches an uninterrupted one would (Tunix issues #2288/#2290 describe
the failure this prevents: a resume that reshuffles or skips data).

Checkpoint file ``checkpoint.npz`` in ``checkpoint_dir``: the leaves of the state pytree
(bit patterns, so bfloat16 and PRNG keys survive), the update count, and the metrics and
evaluation rows so far. It is written to a temporary name and moved into place with
``os.replace``, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.run.loop import History, RunInterrupted, first_non_finite, run_loop

__all__ = [
    "NonFiniteLoss",
    "StageInterrupted",
    "batch_indices",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "run_stage",
    "CHECKPOINT_FILE",
]

CHECKPOINT_FILE = "checkpoint.npz"


class NonFiniteLoss(ValueError):
    """A training loss became NaN or infinite; ``metrics`` holds the updates so far."""

    def __init__(self, message: str, metrics: dict[str, np.ndarray]):
        super().__init__(message)
        self.metrics = metrics


class StageInterrupted(RunInterrupted):
    """Ctrl-C stopped a training stage; ``metrics`` holds the updates finished before it."""

    def __init__(self, metrics: dict[str, np.ndarray], updates_done: int | None = None):
        if updates_done is None:
            updates_done = len(next(iter(metrics.values()), ()))
        super().__init__("interrupted", metrics, updates_done)


def batch_indices(key: jax.Array, step, num_rows: int, batch_size: int) -> jax.Array:
    """Row indices ``[batch_size]`` of update ``step``: epoch-wise shuffles, no replacement.

    The data stream is the concatenation of epoch permutations
    ``perm_e = jax.random.permutation(fold_in(key, e), num_rows)``, e = 0, 1, …; update
    ``t`` takes its positions ``t·B … t·B + B − 1``. The first ``num_rows // B`` updates
    therefore visit distinct rows, every row once per epoch. Works under jit with a
    traced ``step``.

    Args:
        key: the data-order key (fixed for a run).
        step: update index ``t`` (int or traced int32 scalar).
        num_rows: ``N``, rows in the dataset (static).
        batch_size: ``B`` (static).
    """
    start = jnp.asarray(step, jnp.int32) * batch_size
    pos = start + jnp.arange(batch_size, dtype=jnp.int32)
    first = start // num_rows
    # a batch spans at most B // N + 2 consecutive epochs (static count)
    epochs = first + jnp.arange(batch_size // num_rows + 2, dtype=jnp.int32)
    perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(key, e), num_rows))(epochs)
    return perms[pos // num_rows - first, pos % num_rows]


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` reads back."""

    state: Any  # the train state pytree, placed like the target it was restored into
    step: int  # updates done
    eval_every: int  # the evaluation interval of the run that wrote it (0 = not recorded)
    metrics: dict[str, np.ndarray]  # each [step]
    evals: dict[str, np.ndarray]  # each [evaluations so far]


def _leaf_bits(leaf) -> np.ndarray:
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    arr = np.asarray(jax.device_get(leaf))
    # the raw bit pattern: bfloat16 and other non-numpy dtypes round-trip exactly
    return (
        arr.view(np.dtype(f"u{arr.dtype.itemsize}")) if arr.dtype.itemsize in (1, 2, 4, 8) else arr
    )


def save_checkpoint(
    directory: str,
    state,
    step: int,
    metrics: dict[str, np.ndarray],
    evals: dict[str, np.ndarray],
    eval_every: int = 0,
) -> str:
    """Writes ``directory/checkpoint.npz`` atomically (temporary name, then ``os.replace``).

    Args:
        directory: created if missing.
        state: any pytree of arrays (params, optimiser state, RL roles with the KL controller).
        step: updates done.
        metrics: per-update arrays so far, each ``[step]``.
        evals: per-evaluation arrays so far.
        eval_every: the run's evaluation interval (checked on resume; 0 = not recorded).

    Returns:
        The checkpoint's path.
    """
    os.makedirs(directory, exist_ok=True)
    arrays = {"step": np.asarray(step, np.int64), "eval_every": np.asarray(eval_every, np.int64)}
    for i, leaf in enumerate(jax.tree_util.tree_leaves(state)):
        arrays[f"leaf/{i:05d}"] = _leaf_bits(leaf)
    arrays.update({f"metric/{k}": np.asarray(v) for k, v in metrics.items()})
    arrays.update({f"eval/{k}": np.asarray(v) for k, v in evals.items()})
    path = os.path.join(directory, CHECKPOINT_FILE)
    tmp = path + f".tmp{os.getpid()}.npz"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _restore_leaf(bits: np.ndarray, target, where: str):
    is_key = isinstance(target, jax.Array) and jnp.issubdtype(target.dtype, jax.dtypes.prng_key)
    ref = jax.random.key_data(target) if is_key else target
    dtype, shape = np.dtype(ref.dtype), tuple(np.shape(ref))
    if bits.shape != shape or bits.dtype.itemsize != dtype.itemsize:
        raise ValueError(
            f"{where}: leaf of shape {bits.shape} ({bits.dtype.itemsize}-byte items) does not "
            f"match the run's state ({shape}, {dtype}); was it written by another config?"
        )
    value = bits.view(dtype)
    sharding = getattr(ref, "sharding", None)
    value = jax.device_put(value, sharding) if isinstance(ref, jax.Array) else value
    return jax.random.wrap_key_data(value, impl=jax.random.key_impl(target)) if is_key else value


def load_checkpoint(directory: str, target) -> Checkpoint:
    """Reads ``directory/checkpoint.npz`` into the structure of ``target``.

    Args:
        directory: where :func:`save_checkpoint` wrote.
        target: a state pytree of the same structure (the freshly initialised state of
            the run being resumed): it supplies the tree, dtypes and device placement.

    Raises:
        ValueError: no checkpoint there, or its leaves do not match ``target``.
    """
    path = os.path.join(directory, CHECKPOINT_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no checkpoint to resume from (checkpoint_dir={directory!r})")
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    leaves, treedef = jax.tree_util.tree_flatten(target)
    saved = sorted(k for k in data if k.startswith("leaf/"))
    if len(saved) != len(leaves):
        raise ValueError(
            f"{path}: holds {len(saved)} state leaves, the run's state has {len(leaves)}; "
            "was it written by another stage or config?"
        )
    restored = [_restore_leaf(data[k], t, path) for k, t in zip(saved, leaves, strict=True)]

    def table(prefix):
        return {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}

    return Checkpoint(
        jax.tree_util.tree_unflatten(treedef, restored),
        int(data["step"]),
        int(data.get("eval_every", 0)),
        table("metric/"),
        table("eval/"),
    )


def _stack_evals(evals: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.asarray([e[k] for e in evals]) for k in evals[0]} if evals else {}


def run_stage(
    advance: Callable,
    state,
    *,
    num_updates: int,
    eval_every: int,
    evaluate: Callable[[Any], dict[str, float]],
    updates_per_call: int = 1,
    time_calls: bool = False,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Runs ``num_updates`` updates of ``advance``, evaluating and checkpointing as it goes.

    The chunks, the non-finite stop, Ctrl-C and the metric transfers are the host loop of
    :func:`jaxrl.run.loop.run_loop`, the same as ``jaxrl train``'s; the evaluation, the
    ``checkpoint.npz`` and the resume are this stage runner's.

    Args:
        advance: ``advance(state, t) -> (state, metrics)``, performing updates
            ``t … t + updates_per_call − 1``; metrics are scalars (one update per call)
            or ``[updates_per_call]`` arrays. It must depend on ``t`` and ``state`` only
            (data rows and keys derived from them), which is what makes resume exact.
        state: the initial state (also the structure a checkpoint is restored into).
        num_updates: total updates (a multiple of ``updates_per_call``).
        eval_every: updates between evaluations (a multiple of ``updates_per_call``); the
            last evaluation is after update ``num_updates`` whatever the remainder.
        evaluate: ``evaluate(state) -> {name: float}``, deterministic given the state.
        updates_per_call: updates done by one ``advance`` call.
        time_calls: record ``step_time``, the wall time of each call (it waits for the
            call to finish, so use it with one update per call).
        checkpoint_dir: if given, ``checkpoint.npz`` is written there after every evaluation.
        resume: restore the checkpoint in ``checkpoint_dir`` and continue from it.
        progress_callback: ``(updates_done, numbers)`` after each evaluation: the mean
            metrics of the interval and the evaluation.

    Returns:
        ``(state, metrics, evals)``: metrics ``[num_updates]`` per name; evals one row per
        evaluation (``step``, ``wall_time`` and the evaluation's numbers).

    Raises:
        NonFiniteLoss: a ``*loss*`` metric is NaN/inf (checked once per interval).
        StageInterrupted: Ctrl-C; holds the metrics of the finished intervals. The first
            Ctrl-C stops after the current interval (its evaluation and checkpoint
            written whole); a second stops at once.
    """
    for name, value in (("eval_every", eval_every), ("num_updates", num_updates)):
        if value % updates_per_call:
            raise ValueError(
                f"{name} ({value}) must be a multiple of updates_per_call ({updates_per_call})"
            )
    if resume and not checkpoint_dir:
        raise ValueError("resume=True needs a checkpoint_dir to resume from")
    history = History(num_updates)
    evals: list[dict] = []
    wall_offset = 0.0
    if resume:
        ckpt = load_checkpoint(checkpoint_dir, state)
        if ckpt.step > num_updates:
            raise ValueError(
                f"{checkpoint_dir}: checkpoint at update {ckpt.step} is past num_updates "
                f"({num_updates})"
            )
        if ckpt.eval_every and ckpt.eval_every != eval_every:
            raise ValueError(
                f"{checkpoint_dir}: checkpoint written with eval_every={ckpt.eval_every}, this run "
                f"has eval_every={eval_every}; resume with the settings of the interrupted run"
            )
        state = ckpt.state
        history.add(0, ckpt.step, ckpt.metrics)
        history.done = ckpt.step
        num_evals = len(ckpt.evals.get("step", ()))
        evals = [{k: v[i].item() for k, v in ckpt.evals.items()} for i in range(num_evals)]
        wall_offset = float(evals[-1]["wall_time"]) if evals else 0.0
    if not evals:
        evals.append({"step": 0, "wall_time": 0.0, **evaluate(state)})
    start = time.perf_counter() - wall_offset

    def check(iv):
        bad = first_non_finite(iv.metrics)
        if bad is not None:
            name, _, u = bad
            raise NonFiniteLoss(
                f"non-finite {name} at update {iv.start + u + 1}; "
                "stopped after writing the metrics so far",
                iv.history,
            )

    def evaluation(iv):
        ev = {"step": iv.done, "wall_time": time.perf_counter() - start, **evaluate(iv.state)}
        evals.append(ev)
        return ev

    def save(iv):
        save_checkpoint(
            checkpoint_dir, iv.state, iv.done, iv.history, _stack_evals(evals), eval_every
        )

    def report(iv):
        means = {k: float(np.mean(v)) for k, v in iv.metrics.items()}
        progress_callback(iv.done, {**means, **iv.evaluation})

    try:
        state = run_loop(
            lambda s, t, n: (*advance(s, t), None),
            state,
            history=history,
            interval=eval_every,
            per_call=updates_per_call,
            check=check,
            evaluate=evaluation,
            save=save if checkpoint_dir else None,
            report=report if progress_callback is not None else None,
            time_calls=time_calls,
        ).state
    except RunInterrupted as e:
        raise StageInterrupted(e.metrics, e.updates_done) from None
    return state, history.upto(), _stack_evals(evals)
