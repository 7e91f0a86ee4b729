"""Figures of the report, drawn from the suite JSONs alone.

* ``plot_learning_curves``: one panel per environment, one line per algorithm: the
  IQM over seeds of the (forward-filled, windowed) training return against
  environment steps, with its 95% bootstrap band, and the published number dashed.
* ``plot_aggregate``: the rliable-style interval plot: per algorithm, the IQM of the
  normalised final scores pooled over its environments, with the 95% stratified
  bootstrap interval (environments are the strata).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.harness.stats import iqm, normalized_score, stratified_bootstrap_ci

__all__ = ["aggregate_scores", "plot_aggregate", "plot_learning_curves", "variant"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(rows: list[dict], path: Path, title: str = "", group: str = "env_id"):
    """Saves the learning curves of ``rows`` (each with a ``curve``) to ``path``."""
    plt = _plt()
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row.get("curve"):
            groups[row[group]].append(row)
    if not groups:
        return None
    cols = min(3, len(groups))
    nrows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.4 * nrows), squeeze=False)
    for ax, (env_id, env_rows) in zip(axes.flat, sorted(groups.items()), strict=False):
        for i, row in enumerate(env_rows):
            c = row["curve"]
            x = np.asarray(c["steps"], dtype=float)
            y = np.asarray([np.nan if v is None else v for v in c["iqm"]], dtype=float)
            lo = np.asarray([np.nan if v is None else v for v in c["lo"]], dtype=float)
            hi = np.asarray([np.nan if v is None else v for v in c["hi"]], dtype=float)
            colour = f"C{i}"
            label = f"{row.get('algo', row['name'])} ({row['seeds']} seeds)"
            ax.plot(x, y, color=colour, label=label)
            ax.fill_between(x, lo, hi, color=colour, alpha=0.2, linewidth=0)
            pub = row.get("published")
            if pub:
                ax.axhline(pub["value"], color=colour, ls="--", lw=1)
        ax.set_title(env_id, fontsize=10)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("training return (IQM, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title + "   (dashed: published number)", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def variant(row: dict) -> str:
    """What a row's name adds to ``<algo>-<env>`` ('' for an algorithm's own row): a
    variant (e.g. ``ppo-Pendulum-v1-statestd``) is a tried setting, not the algorithm."""
    return row.get("name", "").removeprefix(f"{row['algo']}-{row['env_id']}").lstrip("-")


def aggregate_scores(rows: list[dict], randoms: dict[str, dict], by: str = "algo") -> dict:
    """Normalised final scores per ``by`` value, stratified by environment.

    A row counts when it has a published number, the environment has a finite
    random-policy return and it is no :func:`variant`: ``(score − random) /
    (published − random)`` per seed.

    Returns:
      ``{key: {"strata": {env: [S] scores}, "iqm": float, "ci95": [lo, hi]}}``.
    """
    strata: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for row in rows:
        pub = row.get("published")
        rand = (randoms.get(row["env_id"]) or {}).get("mean")
        scores = np.asarray([np.nan if v is None else v for v in row.get("per_seed", [])], float)
        scores = scores[np.isfinite(scores)]
        if not pub or rand is None or scores.size == 0 or pub["value"] == rand or variant(row):
            continue
        strata[row[by]][row["env_id"]] = normalized_score(scores, rand, pub["value"])
    out = {}
    for key, s in strata.items():
        pooled = np.concatenate(list(s.values()))
        out[key] = {
            "strata": {k: v.tolist() for k, v in s.items()},
            "iqm": iqm(pooled),
            "ci95": list(stratified_bootstrap_ci(s, iqm)),
        }
    return out


def plot_aggregate(aggregate: dict, path: Path, title: str = ""):
    """rliable-style interval plot: IQM of normalised scores with 95% stratified CIs."""
    if not aggregate:
        return None
    plt = _plt()
    keys = sorted(aggregate)
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(keys) + 1.4))
    for i, k in enumerate(keys):
        a = aggregate[k]
        lo, hi = a["ci95"]
        ax.barh(i, hi - lo, left=lo, height=0.6, color=f"C{i}", alpha=0.45)
        ax.plot([a["iqm"], a["iqm"]], [i - 0.3, i + 0.3], color="k", lw=2)
        ax.annotate(
            f"{len(a['strata'])} env",
            xy=(1.0, i),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.axvline(1.0, color="k", ls="--", lw=1)
    ax.set_yticks(range(len(keys)), keys)
    ax.set_xlabel("IQM of normalised score (0 = random policy, 1 = published)")
    ax.set_title(title or "Aggregate IQM with 95% stratified bootstrap CI", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
