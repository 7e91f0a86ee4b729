"""The run directory: config.json, metrics.csv, summary.json, curves.png.

Layout (DESIGN.md)::

    DIR/config.json    algorithm, every Config field, seeds, versions, machine
    DIR/metrics.csv    one row per update per seed (seed, update, env_steps, metrics...)
    DIR/summary.json   final return over seeds: mean, std, IQM, 95% bootstrap CIs; timings
    DIR/curves.png     IQM episode return over seeds against environment steps, 95% CI band
    DIR/tensorboard/   the same metrics as TensorBoard events (optional)

:class:`jaxrl.run.writer.RunWriter` writes them for ``jaxrl train``, ``jaxrl llm`` and
``jaxrl solve``; every file is written atomically (a temporary file renamed into place),
so a reader never sees half a file.
Tabular agents count episodes, not environment steps: their column and axis say so.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxrl
from jaxrl.run.stats import bootstrap_ci, final_returns, iqm, summarize

__all__ = [
    "check_writable",
    "machine_info",
    "progress_unit",
    "read_summary",
    "write_table_csv",
    "make_summary",
    "summarize_runs",
    "plot_curves",
    "plot_stage",
    "read_metrics_csv",
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


def check_writable(out: Path) -> None:
    """Creates the run directory ``out``; a path that cannot be one raises one-line ValueError."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory; name a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".write-test.")
        os.close(fd)
        os.remove(tmp)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def progress_unit(config: Any) -> str:
    """``"episodes"`` for agents that count episodes (tabular), else ``"env_steps"``."""
    names = (
        {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else set()
    )
    return "episodes" if "num_episodes" in names and "total_timesteps" not in names else "env_steps"


def read_summary(out_dir: Path | None) -> dict | None:
    """summary.json of a run directory, or None when there is none (or it is unreadable)."""
    if out_dir is None:
        return None
    try:
        return json.loads((Path(out_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None


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


def write_metrics_csv(
    out_dir: Path,
    metrics: dict[str, np.ndarray],
    seeds: list[int],
    steps_per_update: int,
    labels: dict[str, list] | None = None,
    unit: str = "env_steps",
) -> None:
    """One row per update per run. ``metrics[k]`` is ``[runs, updates]``.

    ``labels`` adds columns that tell runs apart (e.g. ``{"learning_rate": [...]}`` in a sweep).
    ``unit`` names the progress column (``update × steps_per_update``); a metric of the
    same name (the off-policy agents' ``env_steps``) is that column and is not repeated.
    """
    names = sorted(k for k in metrics if k != unit)
    first = metrics[names[0]] if names else next(iter(metrics.values()), None)
    runs, updates = np.shape(first)[:2] if first is not None else (len(seeds), 0)
    labels = labels or {}
    cols = [np.asarray(metrics[k]).reshape(runs, updates, -1)[..., 0] for k in names]
    header = ["run", *labels, "seed", "update", unit, *names]
    rows = (
        [r, *(labels[k][r] for k in labels), seeds[r], u + 1, (u + 1) * steps_per_update,
         *(f"{c[r, u]:.6g}" for c in cols)]
        for r in range(runs)
        for u in range(updates)
    )  # fmt: skip
    _write_csv(Path(out_dir) / "metrics.csv", header, rows)


def write_table_csv(path: Path, table: dict[str, np.ndarray], index: str | None = None) -> None:
    """A table of equal-length columns as CSV (atomic), with a 1-based ``index`` column."""
    names = sorted(table)
    n = len(np.asarray(table[names[0]])) if names else 0
    cols = [np.asarray(table[k], dtype=np.float64).ravel() for k in names]
    header = ([index] if index else []) + names
    rows = (([i + 1] if index else []) + [f"{c[i]:.6g}" for c in cols] for i in range(n))
    _write_csv(Path(path), header, rows)


def _write_csv(path: Path, header: list, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
    xlabel: str = "environment steps",
) -> str:
    """Plots one line per entry of ``curves`` (each ``[runs, updates]``): the IQM over runs
    of the smoothed returns, with a 95% percentile-bootstrap band of that IQM.

    The figure says what line and band are; the same caption is returned and stored in
    the PNG's ``Description`` text field.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.3))
    runs = window = 1
    for label, values in curves.items():
        v = np.asarray(values, dtype=np.float64)
        runs, window = v.shape[0], _window(v.shape[1])
        v = _smooth(_fill_nan(v), window)
        x = np.arange(1, v.shape[1] + 1) * steps_per_update
        centre = np.array([iqm(c[np.isfinite(c)]) for c in v.T])
        band = np.array([bootstrap_ci(c[np.isfinite(c)], iqm, num_resamples=200) for c in v.T])
        ax.plot(x, centre, label=label)
        if v.shape[0] > 1:
            ax.fill_between(x, band[:, 0], band[:, 1], alpha=0.25)
    smoothing = f"smoothed over {window} updates" if window > 1 else "not smoothed"
    band_text = "band: 95% bootstrap CI of the IQM" if runs > 1 else "no band (1 run)"
    caption = f"line: IQM over {runs} seed{'s' * (runs > 1)}; {band_text}; {smoothing}"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=8)
    if len(curves) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=120, metadata={"Description": caption})
    plt.close(fig)
    return caption


def plot_stage(path: Path, metrics: dict, evals: dict, title: str) -> None:
    """An LLM stage's curves.png: the training loss (or mean reward) per update, and the
    held-out scores and accuracies at each evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "loss" if "loss" in metrics else "reward_mean"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    y = np.asarray(metrics.get(metric, []), dtype=float)
    axes[0].plot(np.arange(1, len(y) + 1), y)
    axes[0].set_xlabel("update")
    axes[0].set_ylabel(metric)
    steps = np.asarray(evals.get("step", []), dtype=float)
    for k, v in evals.items():
        if k != "step" and any(s in k for s in ("score", "accuracy")):
            axes[1].plot(steps, np.asarray(v, dtype=float), marker="o", label=k)
    axes[1].set_xlabel("update")
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _window(num_updates: int) -> int:
    return max(1, num_updates // 50)


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
    window = window or _window(v.shape[1])
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
