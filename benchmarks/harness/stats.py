"""Statistics of the benchmark report: IQM, stratified bootstrap intervals, normalised scores.

Agarwal et al., Deep Reinforcement Learning at the Edge of the Statistical Precipice
(NeurIPS 2021), https://arxiv.org/abs/2108.13264: report the interquartile mean (IQM)
of the runs with a 95% *stratified* bootstrap interval. With M tasks (environments)
and N_m runs on task m, one bootstrap replicate draws N_m runs with replacement from
each task separately (the strata), pools the replicate's scores and computes the
statistic; the interval is the 2.5% and 97.5% percentiles of the replicates. With one
task this is the ordinary percentile bootstrap over runs.

Scores of different environments are made comparable before pooling:
``normalized = (score − random) / (reference − random)`` (0 = a random policy,
1 = the published number).

Shapes: S = runs (seeds), U = updates, M = tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from jaxrl.run.stats import iqm

__all__ = [
    "bootstrap_replicates",
    "curve_band",
    "forward_fill",
    "iqm",
    "normalized_score",
    "stratified_bootstrap_ci",
    "summarize_scores",
]


def _strata(scores) -> list[np.ndarray]:
    """The finite scores of each task as float64 vectors (a task with none is an error)."""
    if isinstance(scores, Mapping):
        scores = list(scores.values())
    elif isinstance(scores, np.ndarray) and scores.ndim == 1:
        scores = [scores]
    strata = []
    for i, s in enumerate(scores):
        v = np.asarray(s, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size == 0:
            raise ValueError(f"scores: task {i} has no finite score")
        strata.append(v)
    if not strata:
        raise ValueError("scores: no task given")
    return strata


def bootstrap_replicates(
    scores,
    statistic: Callable[[np.ndarray], float] = iqm,
    num_resamples: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """The statistic of ``num_resamples`` stratified bootstrap replicates.

    Each replicate resamples every task's runs with replacement (N_m draws from the
    N_m runs of task m), concatenates the tasks and applies ``statistic``.

    Args:
      scores: one task as a vector ``[S]``, or several as a list or a dict of vectors
        (task → ``[S_m]``); non-finite scores are dropped.
      statistic: maps the pooled vector ``[Σ S_m]`` to a float (default IQM).
      num_resamples: number of replicates R.
      seed: NumPy generator seed (the intervals are reproducible).

    Returns:
      ``[R]`` float64.
    """
    strata = _strata(scores)
    rng = np.random.default_rng(seed)
    draws = [s[rng.integers(0, s.size, size=(num_resamples, s.size))] for s in strata]
    pooled = np.concatenate(draws, axis=1)  # [R, Σ S_m]
    return np.array([statistic(row) for row in pooled])


def stratified_bootstrap_ci(
    scores,
    statistic: Callable[[np.ndarray], float] = iqm,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` under the stratified bootstrap.

    ``[q_{α/2}, q_{1−α/2}]`` of :func:`bootstrap_replicates` with α = 1 − confidence.
    A task whose runs all agree contributes no spread: e.g. tasks ``[0, 0, 0]`` and
    ``[1, 1, 1]`` give exactly ``(0.5, 0.5)`` for the mean, where an unstratified
    bootstrap of the six pooled values would not.

    Args:
      scores: as in :func:`bootstrap_replicates`.
      statistic: the aggregate (default IQM).
      confidence: in (0, 1).
      num_resamples: replicates R.
      seed: NumPy generator seed.

    Returns:
      ``(low, high)``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    reps = bootstrap_replicates(scores, statistic, num_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarize_scores(values, num_resamples: int = 2000, seed: int = 0) -> dict:
    """Mean, std, IQM and 95% bootstrap intervals of the IQM and of the mean over runs.

    Args:
      values: ``[S]`` one final score per run (non-finite values are dropped and counted).

    Returns:
      dict with n, n_dropped, mean, std (ddof 1), iqm, iqm_ci95, mean_ci95, min, max
      (None where there is no finite value).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    dropped = int(v.size - finite.size)
    if finite.size == 0:
        keys = ("mean", "std", "iqm", "iqm_ci95", "mean_ci95", "min", "max")
        return {"n": 0, "n_dropped": dropped, **dict.fromkeys(keys)}
    return {
        "n": int(finite.size),
        "n_dropped": dropped,
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        "iqm": iqm(finite),
        "iqm_ci95": list(stratified_bootstrap_ci(finite, iqm, 0.95, num_resamples, seed)),
        "mean_ci95": list(stratified_bootstrap_ci(finite, np.mean, 0.95, num_resamples, seed)),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def normalized_score(score, random: float, reference: float):
    """``(score − random) / (reference − random)``: 0 at a random policy, 1 at the reference.

    Raises ValueError when ``reference == random`` (no scale).
    """
    if reference == random:
        raise ValueError(f"normalized_score: reference ({reference}) equals random ({random})")
    return (np.asarray(score, dtype=np.float64) - random) / (reference - random)


def forward_fill(values) -> np.ndarray:
    """Carries each run's last finite value forward along updates (``[S, U]`` → ``[S, U]``).

    An update in which no episode finished reports NaN; the curve keeps the last
    finished episode's return there. Leading NaNs stay NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None]
    finite = np.isfinite(v)
    idx = np.where(finite, np.arange(v.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(v, idx, axis=1)
    seen = np.maximum.accumulate(finite, axis=1)
    return np.where(seen, filled, np.nan)


def curve_band(
    values,
    steps_per_update: int,
    max_points: int = 60,
    num_resamples: int = 200,
    seed: int = 0,
) -> dict[str, list]:
    """A learning curve for the report: IQM over runs with a 95% bootstrap band.

    The updates are forward-filled (:func:`forward_fill`), then cut into at most
    ``max_points`` consecutive windows; each run's mean over a window is one value,
    and the window's point is the IQM over runs with its percentile interval.

    Args:
      values: ``[S, U]`` mean return of the episodes finished in each update (NaN: none).
      steps_per_update: environment steps per update (all environments together).

    Returns:
      dict of lists, one entry per point: ``steps`` (environment steps at the window's
      end), ``iqm``, ``mean``, ``lo``, ``hi``.
    """
    v = forward_fill(values)
    num_updates = v.shape[1]
    edges = np.unique(np.linspace(0, num_updates, min(max_points, num_updates) + 1).astype(int))
    out: dict[str, list] = {"steps": [], "iqm": [], "mean": [], "lo": [], "hi": []}
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        window = v[:, a:b]
        counts = np.isfinite(window).sum(axis=1)
        sums = np.where(np.isfinite(window), window, 0.0).sum(axis=1)
        per_run = sums[counts > 0] / counts[counts > 0]
        out["steps"].append(int(b * steps_per_update))
        if per_run.size == 0:
            for k in ("iqm", "mean", "lo", "hi"):
                out[k].append(None)
            continue
        lo, hi = stratified_bootstrap_ci(per_run, iqm, 0.95, num_resamples, seed)
        out["iqm"].append(iqm(per_run))
        out["mean"].append(float(per_run.mean()))
        out["lo"].append(lo)
        out["hi"].append(hi)
    return out
