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

import numpy as np

# The bootstrap lives once, in jaxrl.run.stats (what summary.json and curves.png use).
from jaxrl.run.stats import bootstrap_replicates, iqm, stratified_bootstrap_ci, summarize

__all__ = [
    "bootstrap_replicates",
    "curve_band",
    "forward_fill",
    "iqm",
    "normalized_score",
    "stratified_bootstrap_ci",
    "summarize_scores",
]


def summarize_scores(values, num_resamples: int = 2000, seed: int = 0) -> dict:
    """Mean, std, IQM and 95% bootstrap intervals of the IQM and of the mean over runs.

    Args:
      values: ``[S]`` one final score per run (non-finite values are dropped and counted).

    Returns:
      dict with n, n_dropped, mean, std (ddof 1), iqm, iqm_ci95, mean_ci95, min, max
      (None where there is no finite value).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    dropped = int(v.size - np.isfinite(v).sum())
    out = summarize(v, num_resamples=num_resamples, seed=seed)
    return {"n": out.pop("n"), "n_dropped": dropped, **out}


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
