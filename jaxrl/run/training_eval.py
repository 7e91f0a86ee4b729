"""``jaxrl train --eval-every K``: the deterministic policy evaluated between chunks."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from jaxrl.run.episodes import _cached_evaluator

__all__ = ["TrainingEvaluation"]


class TrainingEvaluation:
    """``--eval-every K``: the deterministic policy of every run, evaluated between chunks.

    Call it after every chunk with ``(updates_done, state)``; each time the updates pass a
    multiple of ``every`` (and after the last update) it plays ``episodes`` episodes per
    run in one compiled program (:func:`make_evaluator`), appends one row per run to
    ``DIR/evals.csv`` (run, seed, update, env_steps, eval_return, eval_length) and redraws
    ``DIR/eval_curves.png`` (mean over runs, with the range of the runs).

    Args:
      out_dir: the run directory (None: keep the rows in ``self.rows`` only).
      algo, config: the algorithm and the Config of the compiled group.
      run_ids: the sweep's row index of each run of the group; seeds: their seeds.
      every: K, in updates; episodes: per run and evaluation.
      steps_per_update, num_updates: the agent's.
    """

    def __init__(
        self, out_dir, algo, config, run_ids, seeds, every, episodes, steps_per_update, num_updates
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"--eval-every must be an integer >= 1 (updates), got {every!r}")
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise ValueError(f"--eval-episodes must be an integer >= 1, got {episodes!r}")
        self.out = None if out_dir is None else Path(out_dir)
        self.run_ids, self.seeds = [int(r) for r in run_ids], [int(s) for s in seeds]
        self.every, self.spu, self.total = every, steps_per_update, num_updates
        self.evaluate_state = _cached_evaluator(algo, config, episodes, True, 0)
        self.rows: list[dict] = []
        self.last = 0

    def __call__(self, done: int, state) -> None:
        import jax

        if done // self.every == self.last // self.every and done != self.total:
            return
        self.last = done
        n = len(self.seeds)
        state = jax.tree.map(lambda x: x[:n], state)  # drop the runs padded for devices
        rets, lens = self.evaluate_state(state, self.seeds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a run with no finished episode
            means, mean_lens = np.nanmean(rets, 1), np.nanmean(lens, 1)
        for r in range(n):
            self.rows.append(
                {
                    "run": self.run_ids[r],
                    "seed": self.seeds[r],
                    "update": done,
                    "env_steps": done * self.spu,
                    "eval_return": float(means[r]),
                    "eval_length": float(mean_lens[r]),
                }
            )
        if self.out is not None:
            self._write()

    def _write(self) -> None:
        import csv

        path = self.out / "evals.csv"
        keep = []
        if path.exists():  # rows of other groups, or of the run before a resume
            with open(path, newline="") as f:
                mine = {(r["run"], r["update"]) for r in self.rows}
                keep = [
                    r for r in csv.DictReader(f) if (int(r["run"]), int(r["update"])) not in mine
                ]
        rows = keep + self.rows
        rows.sort(key=lambda r: (int(r["run"]), int(r["update"])))
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(self.rows[0]))
            w.writeheader()
            w.writerows(rows)
        _plot_evals(self.out / "eval_curves.png", rows)


def _plot_evals(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted({int(r["env_steps"]) for r in rows})
    by_step = {
        s: [float(r["eval_return"]) for r in rows if int(r["env_steps"]) == s] for s in steps
    }
    mean = [np.nanmean(by_step[s]) for s in steps]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, mean, marker="o", label="mean over runs")
    ax.fill_between(
        steps, [np.nanmin(by_step[s]) for s in steps], [np.nanmax(by_step[s]) for s in steps],
        alpha=0.25, label="range of the runs",
    )  # fmt: skip
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (deterministic policy)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
