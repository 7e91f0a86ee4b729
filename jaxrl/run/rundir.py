"""The run directory: config.json, metrics.csv, summary.json, curves.png.

Layout (DESIGN.md)::

    DIR/config.json    algorithm, every Config field, seeds, versions, machine
    DIR/metrics.csv    one row per update per seed (seed, update, env_steps, metrics...)
    DIR/summary.json   final return over seeds: mean, std, IQM, 95% bootstrap CIs; timings
    DIR/curves.png     mean episode return against environment steps, with a band
"""

from __future__ import annotations

import csv
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxrl
from jaxrl._config import config_to_dict
from jaxrl.run.stats import bootstrap_ci, final_returns, iqm, summarize

__all__ = [
    "machine_info",
    "make_summary",
    "summarize_runs",
    "plot_curves",
    "read_metrics_csv",
    "write_config",
    "write_json",
    "write_metrics_csv",
    "write_summary",
]


def machine_info() -> dict[str, Any]:
    """The versions and the machine, for every file of numbers this project writes."""
    return {
        "jaxrl": jaxrl.__version__,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def write_json(path: Path, obj: Any) -> None:
    """Writes JSON atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray | jax.Array):
        return np.asarray(o).tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_config(out_dir: Path, algo: str, config: Any, seeds: list[int], **extra) -> None:
    write_json(
        Path(out_dir) / "config.json",
        {
            "algo": algo,
            "config": config_to_dict(config),
            "seeds": list(seeds),
            **extra,
            "machine": machine_info(),
        },
    )


def write_metrics_csv(
    out_dir: Path,
    metrics: dict[str, np.ndarray],
    seeds: list[int],
    steps_per_update: int,
    labels: dict[str, list] | None = None,
) -> None:
    """One row per update per run. ``metrics[k]`` is ``[runs, updates]``.

    ``labels`` adds columns that tell runs apart (e.g. ``{"learning_rate": [...]}`` in a sweep).
    """
    path = Path(out_dir) / "metrics.csv"
    names = sorted(metrics)
    runs, updates = np.shape(metrics[names[0]])[:2] if names else (len(seeds), 0)
    labels = labels or {}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".metrics.csv.")
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", *labels, "seed", "update", "env_steps", *names])
        cols = [np.asarray(metrics[k]).reshape(runs, updates, -1)[..., 0] for k in names]
        for r in range(runs):
            lab = [labels[k][r] for k in labels]
            for u in range(updates):
                row = [f"{c[r, u]:.6g}" for c in cols]
                w.writerow([r, *lab, seeds[r], u + 1, (u + 1) * steps_per_update, *row])
    os.replace(tmp, path)


def read_metrics_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def make_summary(metrics: dict[str, np.ndarray], seeds: list[int], **extra) -> dict:
    """The final return over seeds (mean, std, IQM, 95% bootstrap CIs) and ``extra``."""
    finals = final_returns(metrics["episode_return"])
    summary = {
        "final_return": summarize(finals),
        "final_return_per_seed": {str(s): _num(v) for s, v in zip(seeds, finals, strict=True)},
        "final_return_definition": "mean episode return over the last 5% of updates",
        **extra,
    }
    return summary


def summarize_runs(metrics: dict[str, np.ndarray]) -> dict:
    """``summarize`` of the final returns of the runs in ``metrics`` (each ``[runs, updates]``)."""
    return summarize(final_returns(metrics["episode_return"]))


def write_summary(out_dir: Path, metrics: dict[str, np.ndarray], seeds: list[int], **extra) -> dict:
    """Writes summary.json (see :func:`make_summary`) and returns it."""
    summary = make_summary(metrics, seeds, **extra)
    write_json(Path(out_dir) / "summary.json", summary)
    return summary


def _num(v) -> float | None:
    return None if not np.isfinite(v) else float(v)


def plot_curves(
    path: Path,
    curves: dict[str, np.ndarray],
    steps_per_update: int,
    title: str = "",
    ylabel: str = "episode return",
) -> None:
    """Plots one line per entry of ``curves`` (each ``[runs, updates]``): IQM over runs with a
    95% bootstrap band (mean of the finite values where runs are few)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in curves.items():
        v = np.asarray(values, dtype=np.float64)
        v = _smooth(_fill_nan(v))
        x = np.arange(1, v.shape[1] + 1) * steps_per_update
        centre = np.array([iqm(c[np.isfinite(c)]) for c in v.T])
        band = np.array([bootstrap_ci(c[np.isfinite(c)], iqm, num_resamples=200) for c in v.T])
        ax.plot(x, centre, label=label)
        if v.shape[0] > 1:
            ax.fill_between(x, band[:, 0], band[:, 1], alpha=0.25)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fill_nan(v: np.ndarray) -> np.ndarray:
    """Carries the last finite value forward (updates where no episode finished)."""
    out = v.copy()
    for r in range(out.shape[0]):
        last = np.nan
        for u in range(out.shape[1]):
            if np.isfinite(out[r, u]):
                last = out[r, u]
            else:
                out[r, u] = last
    return out


def _smooth(v: np.ndarray, window: int | None = None) -> np.ndarray:
    window = window or max(1, v.shape[1] // 50)
    if window <= 1:
        return v
    kernel = np.ones(window)
    out = np.empty_like(v)
    for r in range(v.shape[0]):
        finite = np.isfinite(v[r])
        num = np.convolve(np.where(finite, v[r], 0.0), kernel, mode="full")[: v.shape[1]]
        den = np.convolve(finite.astype(float), kernel, mode="full")[: v.shape[1]]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[r] = np.where(den > 0, num / np.maximum(den, 1), np.nan)
    return out
