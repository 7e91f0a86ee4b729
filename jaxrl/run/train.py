"""``train``: one algorithm, one Config, N seeds, a run directory and a progress bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.run import rundir
from jaxrl.run.experiment import RunResult, run_seeds

__all__ = ["train"]


def _progress(total_steps: int, enabled: bool):
    """A rich progress bar (steps, steps/s, latest return) or a no-op."""
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("return {task.fields[ret]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


def train(
    algo_module,
    config: Any,
    seeds: list[int],
    out_dir: str | Path | None = None,
    *,
    algo: str | None = None,
    progress: bool = True,
    chunk_updates: int | None = None,
    agent_kwargs: dict | None = None,
) -> tuple[RunResult, dict]:
    """Trains ``config`` over ``seeds`` and writes the run directory (when ``out_dir`` is given).

    Args:
      algo_module: the algorithm's module (``jaxrl.agents.ppo``) or anything with ``make_agent``.
      config: its Config.
      seeds: one run per seed, all in one vmapped program.
      out_dir: the run directory (created).
      algo: name recorded in config.json (default: the module's last name).
      progress: show a progress bar.
      chunk_updates: updates per chunk (default about 20 chunks).
      agent_kwargs: passed to ``make_agent`` (e.g. ``advantage_fn``).

    Returns:
      ``(result, summary)``.
    """
    algo = algo or algo_module.__name__.rsplit(".", 1)[-1]
    agent = algo_module.make_agent(config, **(agent_kwargs or {}))
    total_steps = agent.num_updates * agent.steps_per_update
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        rundir.write_config(out_dir, algo, config, seeds)

    bar = _progress(total_steps, progress)
    task = None
    start = time.perf_counter()
    if bar is not None:
        bar.start()
        task = bar.add_task(f"{algo} compiling", total=total_steps, rate="", ret="-")

    def on_chunk(done, metrics, state):
        if bar is None:
            return
        ret = metrics["episode_return"][:, -1]
        ret = np.nanmean(ret) if np.isfinite(ret).any() else float("nan")
        elapsed = time.perf_counter() - start
        bar.update(
            task,
            completed=done * agent.steps_per_update,
            description=f"{algo} {getattr(config, 'env_id', '')}",
            rate=f"{done * agent.steps_per_update * len(seeds) / max(elapsed, 1e-9):,.0f} steps/s",
            ret=f"{ret:.1f}",
        )

    try:
        result = run_seeds(agent, config, seeds, chunk_updates=chunk_updates, on_chunk=on_chunk)
    finally:
        if bar is not None:
            bar.stop()
    timing = {
        "compile_s": round(result.compile_s, 3),
        "run_s": round(result.run_s, 3),
        "env_steps_per_seed": total_steps,
        "seeds": len(seeds),
        "steps_per_s": round(total_steps * len(seeds) / max(result.run_s, 1e-9), 1),
    }
    summary = rundir.make_summary(result.metrics, result.seeds, timing=timing)
    if out_dir is not None:
        rundir.write_metrics_csv(out_dir, result.metrics, result.seeds, result.steps_per_update)
        rundir.write_json(out_dir / "summary.json", summary)
        rundir.plot_curves(
            out_dir / "curves.png",
            {algo: result.metrics["episode_return"]},
            result.steps_per_update,
            title=f"{algo} on {getattr(config, 'env_id', '')} ({len(seeds)} seeds)",
        )
    return result, summary
