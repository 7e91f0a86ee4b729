"""The one host loop of every training run: ``jaxrl train`` and each ``jaxrl llm`` stage.

A run hands :func:`run_loop` a compiled ``advance(state, t, n) -> (state, metrics, extra)``
that performs ``n`` updates starting at update ``t`` (``extra``: anything else the hooks
need from the device, such as a parameters-finite flag). The loop calls it until ``total`` updates
are done, in intervals of ``interval`` updates (a chunk of ``jaxrl train``, an evaluation
interval of an LLM stage), each interval one call or several of at most ``per_call``
updates. After every interval, in this order:

1. the interval's metrics and extras leave the device, once (the only host sync of the
   interval);
2. ``check(interval)``: the non-finite stop (:func:`first_non_finite` finds the update);
3. ``evaluate(interval)``: its result is ``interval.evaluation``;
4. ``save(interval)``: the checkpoint, which may include that evaluation;
5. ``report(interval)``: progress, streaming writers.

Ctrl-C: the first one is a request (:class:`jaxrl._signals.StopOnInterrupt`) answered
after step 5 of the current interval, so a checkpoint is never cut in half; a second one
stops at once. Either way :class:`RunInterrupted` carries the metrics of the intervals
whose metrics reached the host. What is a run's own stays with it: the run axis, its
sharding and orbax checkpoints in :func:`jaxrl.run.experiment.run_seeds`; the LLM stages'
``checkpoint.npz`` and evaluations in :func:`jaxrl.llm.runner.run_stage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxrl._signals import StopOnInterrupt

__all__ = ["History", "Interval", "LoopResult", "RunInterrupted", "first_non_finite", "run_loop"]


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run between intervals; the metrics of the finished ones come with it.

    A ``KeyboardInterrupt``, so code that does not handle it stops as before.
    """

    def __init__(self, message: str, metrics: dict[str, np.ndarray], updates_done: int):
        super().__init__(message)
        self.metrics = metrics
        self.updates_done = updates_done


class History:
    """Per-update metrics on the host: one array per name, allocated once for the whole run.

    Intervals are written into place (no concatenation per interval). The update axis is
    ``axis``: 0 for a single run (``[U]``), 1 for a run axis first (``[R, U]``).

    Args:
      total: U, the run's updates.
      axis: the update axis.
      arrays: preallocated arrays (update axis of length ``total``); otherwise each is
        allocated from the first values added under its name.
    """

    def __init__(self, total: int, axis: int = 0, arrays: dict[str, np.ndarray] | None = None):
        self.total, self.axis = int(total), axis
        self.done = 0  # updates whose metrics are here: where the run (re)starts
        self.arrays = dict(arrays or {})

    def _window(self, start: int, stop: int) -> tuple:
        return (slice(None),) * self.axis + (slice(start, stop),)

    def add(self, start: int, n: int, metrics: dict) -> None:
        """Updates ``start … start + n − 1``: the first ``n`` entries of each value's update
        axis (a value without one, e.g. a scalar of a one-update call, is one update)."""
        for name, value in metrics.items():
            value = np.asarray(value)
            if value.ndim == self.axis:
                value = np.expand_dims(value, self.axis)
            if value.shape[self.axis] < n:
                raise ValueError(
                    f"metric {name!r} has {value.shape[self.axis]} entries on axis {self.axis} "
                    f"for {n} updates"
                )
            value = value[self._window(0, n)]
            if name not in self.arrays:
                shape = value.shape[: self.axis] + (self.total,) + value.shape[self.axis + 1 :]
                self.arrays[name] = np.zeros(shape, value.dtype)
            self.arrays[name][self._window(start, start + n)] = value
        self.done = max(self.done, start + n)

    def upto(self, done: int | None = None, start: int = 0) -> dict[str, np.ndarray]:
        """Views of updates ``start … done − 1`` (default: every update added)."""
        stop = self.done if done is None else done
        return {k: v[self._window(start, stop)] for k, v in self.arrays.items()}


class Interval(NamedTuple):
    """What the hooks of :func:`run_loop` see after an interval."""

    start: int  # updates done before the interval
    done: int  # updates done after it
    state: Any  # the state after update `done`
    metrics: dict[str, np.ndarray]  # the interval's updates, update axis of length done - start
    history: dict[str, np.ndarray]  # every update so far, update axis of length done
    extra: Any  # the last call's extra output, on the host
    evaluation: Any = None  # what `evaluate` returned (None before it runs, or without one)


class LoopResult(NamedTuple):
    """What :func:`run_loop` returns."""

    state: Any  # the state after the last update
    done: int  # updates done (the run's total)
    run_s: float  # wall time of the calls and the metric transfers (hooks excluded)


def first_non_finite(metrics: dict, axis: int = 0) -> tuple[str, tuple[int, ...], int] | None:
    """The first non-finite value of a metric whose name contains ``loss``.

    Args:
      metrics: per name, an array whose update axis is ``axis`` (leading axes: runs).

    Returns:
      ``(name, index of the leading axes, update offset)`` of the first bad value in
      name order, then in the order of the axes (the first run, then its first update);
      None when every loss is finite.
    """
    for name in sorted(metrics):
        if "loss" not in name:
            continue
        value = np.asarray(metrics[name], dtype=np.float64)
        value = np.moveaxis(value.reshape(value.shape[: axis + 1] + (-1,)), axis, -2)
        bad = ~np.isfinite(value).all(axis=-1)  # [..., updates]
        if bad.any():
            first = np.argwhere(bad)[0]
            return name, tuple(int(i) for i in first[:-1]), int(first[-1])
    return None


def run_loop(
    advance: Callable[[Any, int, int], tuple[Any, Any, Any]],
    state: Any,
    *,
    history: History,
    interval: int,
    per_call: int | None = None,
    check: Callable[[Interval], None] | None = None,
    evaluate: Callable[[Interval], Any] | None = None,
    save: Callable[[Interval], None] | None = None,
    report: Callable[[Interval], None] | None = None,
    to_host: Callable[[Any], Any] = jax.device_get,
    time_calls: bool = False,
) -> LoopResult:
    """Runs updates ``history.done … history.total − 1`` of ``advance``, interval by interval.

    Args:
      advance: ``advance(state, t, n) -> (state, metrics, extra)`` performing updates
        ``t … t+n−1`` (``n ≤ per_call``); metrics have an update axis (``history.axis``)
        of at least ``n`` entries whose first ``n`` are these updates, or none for one
        update; ``extra`` (any pytree, or None) reaches the hooks as ``Interval.extra``.
      state: the state after update ``history.done`` (a fresh or a restored run).
      history: where metrics go; it also says where the run starts and ends.
      interval: updates between hooks; interval ends fall on multiples of it (and on the
        last update), so a run resumed at a multiple keeps the same boundaries.
      per_call: updates per call of ``advance`` (default: the whole interval in one call).
      check, evaluate, save, report: the hooks, called in this order after each interval
        (see the module's docstring); ``evaluate``'s result is the ``evaluation`` the
        later ones see. An exception from a hook ends the run.
      to_host: fetches the interval's metrics and extras (``jax.device_get``; across
        hosts an all-gather). Called once per interval.
      time_calls: add ``step_time`` to the metrics, the wall time of each call (it waits
        for each call, so use it with one update per call).

    Returns:
      A :class:`LoopResult`.

    Raises:
      RunInterrupted: Ctrl-C; holds ``history`` up to the last interval whose metrics
        reached the host. The first Ctrl-C stops after the current interval's hooks.
    """
    per_call = per_call or interval
    total, done = history.total, history.done
    run_s = 0.0
    stop_requested = StopOnInterrupt()
    try:
        with stop_requested:
            while done < total:
                start = done
                stop = min((done // interval + 1) * interval, total)
                pending = []
                t0 = time.perf_counter()
                while done < stop:
                    n = min(per_call, stop - done)
                    tc = time.perf_counter()
                    state, metrics, extra = advance(state, done, n)
                    if time_calls:
                        jax.block_until_ready(state)
                        metrics = {**metrics, "step_time": np.asarray(time.perf_counter() - tc)}
                    pending.append((done, n, (metrics, extra)))
                    done += n
                fetched = to_host([out for _, _, out in pending])  # leave the device once
                run_s += time.perf_counter() - t0
                for (t, n, _), (host, _) in zip(pending, fetched, strict=True):
                    history.add(t, n, host)
                so_far = history.upto(done)
                iv = Interval(start, done, state, history.upto(done, start), so_far, fetched[-1][1])
                if check is not None:
                    check(iv)
                if evaluate is not None:
                    iv = iv._replace(evaluation=evaluate(iv))
                if save is not None:
                    save(iv)
                if report is not None:
                    report(iv)
                if stop_requested.requested and done < total:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        recorded = history.done
        raise RunInterrupted(
            f"interrupted after update {recorded} of {total}", history.upto(recorded), recorded
        ) from None
    return LoopResult(state, done, run_s)
