"""Aggregate statistics over seeds: mean, IQM and bootstrap confidence intervals.

Agarwal et al., Deep Reinforcement Learning at the Edge of the Statistical
Precipice (NeurIPS 2021): https://arxiv.org/abs/2108.13264 — report the
interquartile mean (IQM) with a 95% bootstrap interval over runs, not a best seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["bootstrap_ci", "final_returns", "iqm", "summarize"]


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


def bootstrap_ci(
    x,
    statistic: Callable[[np.ndarray], float] = iqm,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the values ``x`` (one per run)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    samples = rng.choice(x, size=(num_resamples, x.size), replace=True)
    stats = np.array([statistic(s) for s in samples])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


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


def summarize(values) -> dict:
    """Mean, std, IQM and 95% bootstrap intervals of the mean and of the IQM over runs."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "mean": None, "std": None, "iqm": None, "iqm_ci95": None, "mean_ci95": None}
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "iqm": iqm(v),
        "iqm_ci95": list(bootstrap_ci(v, iqm)),
        "mean_ci95": list(bootstrap_ci(v, np.mean)),
        "min": float(v.min()),
        "max": float(v.max()),
    }
