"""Aggregate statistics over seeds: mean, IQM and bootstrap confidence intervals.

Agarwal et al., Deep Reinforcement Learning at the Edge of the Statistical
Precipice (NeurIPS 2021): https://arxiv.org/abs/2108.13264 — report the
interquartile mean (IQM) with a 95% bootstrap interval over runs, not a best seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = [
    "bootstrap_ci",
    "bootstrap_replicates",
    "final_returns",
    "iqm",
    "stratified_bootstrap_ci",
    "summarize",
]


def iqm(x) -> float:
    """Interquartile mean: the mean of the middle 50% of the values.

    With n values sorted, the lowest and highest n/4 are dropped, fractional
    parts weighted (the scipy.stats.trim_mean(x, 0.25) convention for n
    divisible by 4; for other n the boundary values get fractional weight).
    """
    x = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n = x.size
    if n == 0:
        return float("nan")
    # Weight of each sorted value: the overlap of [i, i+1) with [n/4, 3n/4).
    lo, hi = n / 4, 3 * n / 4
    idx = np.arange(n)
    w = np.clip(np.minimum(idx + 1, hi) - np.maximum(idx, lo), 0.0, 1.0)
    return float((w * x).sum() / w.sum())


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

    With M tasks and N_m runs on task m, a replicate draws N_m runs with replacement
    from each task separately (the strata), pools them and applies ``statistic``.
    With one task this is the ordinary bootstrap over runs.

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
    """Percentile interval ``[q_{α/2}, q_{1−α/2}]`` of :func:`bootstrap_replicates`.

    α = 1 − confidence. A task whose runs all agree contributes no spread: tasks ``[0, 0, 0]`` and
    ``[1, 1, 1]`` give exactly ``(0.5, 0.5)`` for the mean, where an unstratified
    bootstrap of the six pooled values would not.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    reps = bootstrap_replicates(scores, statistic, num_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(
    x,
    statistic: Callable[[np.ndarray], float] = iqm,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the values ``x`` (one per run).

    :func:`stratified_bootstrap_ci` with one task; NaNs for no finite value.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if not np.isfinite(x).any():
        return float("nan"), float("nan")
    return stratified_bootstrap_ci([x], statistic, confidence, num_resamples, seed)


def final_returns(episode_returns, last_fraction: float = 0.05) -> np.ndarray:
    """Each run's final return: the mean episode return over its last updates.

    Args:
      episode_returns: ``[runs, updates]`` mean return of the episodes finished in each update
        (NaN where none finished).
      last_fraction: share of the updates averaged (at least one update).

    Returns:
      ``[runs]``; NaN for a run that finished no episode in that window.
    """
    r = np.asarray(episode_returns, dtype=np.float64)
    if r.ndim == 1:
        r = r[None]
    k = max(1, int(round(r.shape[1] * last_fraction)))
    window = r[:, -k:]
    finite = np.isfinite(window)
    total = np.where(finite, window, 0.0).sum(axis=1)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def summarize(values, num_resamples: int = 2000, seed: int = 0) -> dict:
    """Mean, std, IQM and 95% bootstrap intervals of the mean and of the IQM over runs.

    Non-finite values are dropped; ``n`` counts the rest.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        keys = ("mean", "std", "iqm", "iqm_ci95", "mean_ci95", "min", "max")
        return {"n": 0, **dict.fromkeys(keys)}
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "iqm": iqm(v),
        "iqm_ci95": list(bootstrap_ci(v, iqm, num_resamples=num_resamples, seed=seed)),
        "mean_ci95": list(bootstrap_ci(v, np.mean, num_resamples=num_resamples, seed=seed)),
        "min": float(v.min()),
        "max": float(v.max()),
    }
