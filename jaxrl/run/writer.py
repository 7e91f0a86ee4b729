"""The run-directory writer of ``jaxrl train`` and ``jaxrl llm``: one object, several backends.

In the manner of CLU's metric writers: the runner hands every backend the same
metrics, ``[configs × seeds, updates]`` per name, once per chunk (streaming
backends: TensorBoard) and once at the end (files: metrics.csv, summary.json,
curves.png, written atomically by :mod:`jaxrl.run.rundir`). An LLM stage is one run
counted in updates (:meth:`RunWriter.for_stage`), with evals.csv beside its metrics; a
``jaxrl solve`` directory holds a solution, not metrics (:meth:`RunWriter.write_solution`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrl.run.rundir import (
    check_writable,
    machine_info,
    make_summary,
    plot_curves,
    plot_stage,
    write_json,
    write_metrics_csv,
    write_table_csv,
)

__all__ = ["RunWriter"]


class RunWriter:
    """Writes a ``jaxrl train`` or ``jaxrl llm`` run directory; every backend gets the same metrics.

    Metrics are one ``[configs × seeds, updates]`` array per name, rows ordered
    configuration-major (run ``i·S + s`` is configuration i, seed s). ``out=None``
    (or a process other than the first) writes nothing.

    Args:
      out: the run directory.
      algo, env: named in the figure's title.
      labels: the swept values of each configuration (``[{}]`` without a sweep).
      seeds: the seeds of each configuration.
      unit: ``"env_steps"`` or ``"episodes"`` (:func:`progress_unit`).
    """

    def __init__(self, out, algo: str, env: str, labels, seeds, unit: str = "env_steps"):
        self.out = None if out is None else Path(out)
        self.algo, self.env, self.labels, self.seeds, self.unit = algo, env, labels, seeds, unit
        self.tensorboard = None

    @classmethod
    def for_stage(cls, out, stage: str, seed: int) -> RunWriter:
        """The writer of a ``jaxrl llm STAGE`` run directory: one run, counted in updates."""
        return cls(out, f"llm {stage}", "", [{}], [seed], unit="updates")

    def write_config(self, record: dict) -> None:
        """config.json: what the run is (algorithm or stage, every Config field, seeds,
        versions, machine), written as given, before the run starts."""
        if self.out is not None:
            write_json(self.out / "config.json", record)

    def write_eval(self, result: dict) -> None:
        """eval.json: ``jaxrl eval``'s result, added to a run directory written before."""
        if self.out is not None:
            write_json(self.out / "eval.json", result)

    @classmethod
    def for_solution(cls, out, method: str, env: str) -> RunWriter:
        """The writer of a ``jaxrl solve`` run directory (dynamic programming: no seeds)."""
        return cls(out, method, env, [{}], [])

    def write_solution(self, solution, tol: float) -> None:
        """config.json, summary.json (V*, Q*, the greedy policy) and values.png of ``jaxrl solve``.

        Args:
          solution: a :class:`jaxrl.tabular.SolveResult`; its values are ``[S]``, its
            Q-values ``[S, A]`` and its policy ``[S]``.
          tol: the stopping tolerance the solver was given (recorded in config.json).

        Raises:
          ValueError: one line, when the directory cannot be written.
        """
        if self.out is None:
            return
        from jaxrl.tabular import save_solution_heatmap

        check_writable(self.out)
        r = solution.result
        config = {"method": solution.method, "env": solution.task.name, "gamma": solution.gamma}
        write_json(self.out / "config.json", {**config, "tol": tol, "machine": machine_info()})
        summary = {
            "start_value": solution.start_value,
            "time_limited_return": solution.time_limited_return,
            "iterations": int(r.iterations),
            "values": r.values,
            "policy": r.policy,
            "q_values": r.q_values,
        }
        write_json(self.out / "summary.json", summary)
        save_solution_heatmap(solution, self.out / "values.png")

    def write_stage(self, metrics, evals, summary: dict) -> None:
        """An LLM stage's metrics.csv (``[updates]`` per name: one row per update),
        evals.csv (one row per evaluation), summary.json and curves.png."""
        if self.out is None:
            return
        self.write_stage_partial(metrics)
        write_table_csv(self.out / "evals.csv", evals)
        write_json(self.out / "summary.json", summary)
        plot_stage(self.out / "curves.png", metrics, evals, f"jaxrl {self.algo}")

    def write_stage_partial(self, metrics) -> None:
        """metrics.csv of an LLM stage, also of one stopped early (non-finite loss, Ctrl-C)."""
        if self.out is not None:
            write_table_csv(self.out / "metrics.csv", metrics, "update")

    def add_tensorboard(self) -> None:
        """Also write TensorBoard events (needs tensorboardX), as the chunks arrive."""
        if self.out is not None:
            self.tensorboard = _TensorBoard(self.out, self.labels, self.seeds)

    def on_chunk(self, rows, metrics, done: int, steps_per_update: int) -> None:
        """After a chunk: ``metrics`` ``[len(rows), done]`` are the runs ``rows`` so far."""
        if self.tensorboard is not None:
            self.tensorboard.write(rows, metrics, done, steps_per_update)

    def write(self, metrics, steps_per_update: int, summary: dict) -> None:
        """metrics.csv, summary.json and curves.png of the finished run."""
        if self.out is None:
            return
        self._csv(metrics, steps_per_update)
        write_json(self.out / "summary.json", summary)
        s = len(self.seeds)
        curves = {
            (", ".join(f"{k}={v}" for k, v in lab.items()) or self.algo):
            metrics["episode_return"][i * s : (i + 1) * s]
            for i, lab in enumerate(self.labels)
        }  # fmt: skip
        plot_curves(
            self.out / "curves.png",
            curves,
            steps_per_update,
            title=f"{self.algo} on {self.env} ({s} seeds)",
            xlabel="episodes" if self.unit == "episodes" else "environment steps",
        )

    def write_partial(self, metrics, steps_per_update: int, updates_done: int) -> None:
        """metrics.csv and summary.json of a run stopped after ``updates_done`` updates."""
        if self.out is None or metrics is None or not updates_done:
            return
        self._csv(metrics, steps_per_update)
        summary = make_summary(
            metrics, self.seeds * len(self.labels), stopped_after_update=updates_done
        )
        write_json(self.out / "summary.json", summary)

    def _csv(self, metrics, steps_per_update: int) -> None:
        s = len(self.seeds)
        names = list(self.labels[0]) if self.labels else []
        # Prefixed: a swept field may share its name with a metric (learning_rate).
        columns = {f"config.{n}": [lab[n] for lab in self.labels for _ in range(s)] for n in names}
        runs = np.shape(metrics["episode_return"])[0]
        columns = {k: v[:runs] for k, v in columns.items()}
        write_metrics_csv(
            self.out, metrics, self.seeds * len(self.labels), steps_per_update, columns, self.unit
        )

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


class _TensorBoard:
    """The same metrics as TensorBoard event files, one folder per run (needs tensorboardX)."""

    def __init__(self, out: Path, labels, seeds):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise ValueError(
                "--tensorboard needs tensorboardX: pip install 'jaxrl[tensorboard]'"
            ) from e
        self.writers, self.written = [], {}
        for lab in labels:
            for s in seeds:
                tag = "_".join(f"{k}={v}" for k, v in lab.items())
                name = f"{tag + '_' if tag else ''}seed={s}"
                self.writers.append(SummaryWriter(str(out / "tensorboard" / name)))

    def write(self, rows, metrics, done, steps_per_update) -> None:
        for j, row in enumerate(rows):
            w = self.writers[int(row)]
            for u in range(self.written.get(int(row), 0), done):
                for name, v in metrics.items():
                    val = float(v[j, u])
                    if np.isfinite(val):
                        w.add_scalar(name, val, (u + 1) * steps_per_update)
            self.written[int(row)] = done

    def close(self) -> None:
        for w in self.writers:
            w.close()
