"""``train`` and ``sweep``: configurations × seeds in as few compiled programs as possible.

``sweep(ppo, base, {"learning_rate": [1e-3, 3e-4], "clip_eps": [0.1, 0.2]}, seeds=range(8))``
runs the 4 configurations × 8 seeds as one vmapped program: traced Config
fields become ``[R]`` arrays. A grid over a static field (one that fixes shapes)
is split into one program per value, with a note. ``train`` is a sweep with an
empty grid. Both write the run directory (see :mod:`jaxrl.run.rundir`),
checkpoint between chunks and resume from ``DIR/checkpoints``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl._config import config_from_overrides, config_to_dict, static_fields
from jaxrl.run import rundir
from jaxrl.run.experiment import NonFiniteError, RunResult, run_seeds, stack_configs

__all__ = ["SweepResult", "expand_grid", "sweep", "train"]


@dataclasses.dataclass
class SweepResult:
    """All runs of a sweep, in the order configurations × seeds."""

    configs: list[Any]  # one Config per configuration
    labels: list[dict[str, Any]]  # the swept values of each configuration
    seeds: list[int]
    metrics: dict[str, np.ndarray]  # each [configs * seeds, updates]
    steps_per_update: int
    compile_s: float
    run_s: float
    summary: dict
    states: list[Any]  # final state of each compiled group


def expand_grid(base, grid: Mapping[str, Sequence]) -> tuple[list[Any], list[dict]]:
    """The configurations of a grid (cartesian product), validated before anything compiles."""
    names = list(grid)
    for name in names:
        if isinstance(grid[name], str) or not isinstance(grid[name], Sequence) or not grid[name]:
            raise ValueError(
                f"sweep values of {name!r} must be a non-empty list, got {grid[name]!r}"
            )
    combos = list(itertools.product(*(grid[n] for n in names))) if names else [()]
    configs, labels = [], []
    for combo in combos:
        label = dict(zip(names, combo, strict=True))
        configs.append(config_from_overrides(type(base), label, base=base))
        labels.append(label)
    return configs, labels


def _groups(configs) -> list[list[int]]:
    """Indices of configurations that share every static field (one compiled program each)."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        key = tuple(repr(getattr(c, f)) for f in static_fields(c))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def sweep(
    algo_module,
    base_config: Any,
    grid: Mapping[str, Sequence] | None = None,
    seeds: Sequence[int] = (0,),
    out_dir: str | Path | None = None,
    *,
    algo: str | None = None,
    progress: bool = True,
    chunk_updates: int | None = None,
    agent_kwargs: dict | None = None,
    checkpoint: bool = True,
    keep: int = 3,
    tensorboard: bool = False,
    log=print,
) -> SweepResult:
    """Trains every configuration of ``grid`` (over ``base_config``) for every seed.

    Args:
      algo_module: the algorithm's module (``jaxrl.agents.ppo``), with ``make_agent``.
      base_config: the Config the grid modifies.
      grid: ``{field: [values]}``; None or empty for a single configuration.
      seeds: one run per seed and configuration.
      out_dir: the run directory; when it already holds this run, the run resumes from
        its newest intact checkpoint.
      algo: name recorded in config.json (default: the module's last name).
      progress: show a progress bar.
      chunk_updates: updates per chunk (default about 20 chunks).
      agent_kwargs: passed to ``make_agent`` (e.g. ``advantage_fn``).
      checkpoint: save a checkpoint after every chunk (needs ``out_dir``).
      keep: checkpoints kept.
      tensorboard: also write TensorBoard event files under ``out_dir/tensorboard``.
      log: where notes go.

    Returns:
      A :class:`SweepResult`.
    """
    grid = dict(grid or {})
    algo = algo or algo_module.__name__.rsplit(".", 1)[-1]
    seeds = [int(s) for s in seeds]
    configs, labels = expand_grid(base_config, grid)
    groups = _groups(configs)
    if len(groups) > 1:
        varying = [f for f in grid if f in static_fields(base_config)]
        log(
            f"note: {', '.join(varying)} fix(es) array shapes, so the sweep runs as "
            f"{len(groups)} compiled programs"
        )
    out = Path(out_dir) if out_dir is not None else None
    # Across hosts (jax.distributed) every process runs this; only process 0 writes files,
    # while all of them take part in the (collective) checkpoint saves.
    main_process = jax.process_index() == 0
    files = out if main_process else None
    record = {"algo": algo, "config": config_to_dict(base_config), "seeds": seeds, "grid": grid}
    if files is not None:
        _prepare_out(files, record, algo, base_config, seeds, grid)

    all_metrics: list[dict[str, np.ndarray] | None] = [None] * len(configs)
    states, compile_s, run_s, steps_per_update = [], 0.0, 0.0, None
    bar = _Progress(algo, _env_name(base_config), progress and main_process)
    writer = _TensorBoard(files, labels, seeds) if tensorboard and files is not None else None
    try:
        for g, idx in enumerate(groups):
            group_cfgs = [configs[i] for i in idx]
            agent = algo_module.make_agent(group_cfgs[0], **(agent_kwargs or {}))
            steps_per_update = agent.steps_per_update
            run_cfgs = [c for c in group_cfgs for _ in seeds]
            batched = stack_configs(run_cfgs) if grid else group_cfgs[0]
            ckpt = None
            if out is not None and checkpoint:
                from jaxrl.run.checkpoint import Checkpointer

                sub = "checkpoints" if len(groups) == 1 else f"checkpoints/group-{g}"
                ckpt = Checkpointer(out / sub, keep=keep)
            bar.add(agent.num_updates * agent.steps_per_update, len(run_cfgs))

            def describe(r, idx=idx):
                lab = labels[idx[r // len(seeds)]]
                return ", ".join(f"{k}={v}" for k, v in lab.items()) or "base config"

            def on_chunk(done, metrics, state, idx=idx, spu=agent.steps_per_update):
                bar.update(done * spu, metrics)
                if writer is not None:
                    writer.write(idx, metrics, done, spu)

            try:
                result: RunResult = run_seeds(
                    agent,
                    batched,
                    seeds * len(group_cfgs),
                    config_axis=0 if grid else None,
                    chunk_updates=chunk_updates,
                    on_chunk=on_chunk,
                    checkpointer=ckpt,
                    describe_run=describe,
                )
            except NonFiniteError as e:
                if files is not None:
                    _write_partial(files, e.metrics, seeds, idx, labels, agent.steps_per_update)
                raise
            finally:
                if ckpt is not None:
                    ckpt.close()
            if result.resumed_from:
                log(f"resumed from the checkpoint after update {result.resumed_from}")
            compile_s += result.compile_s
            run_s += result.run_s
            states.append(result.state)
            for j, i in enumerate(idx):
                sl = slice(j * len(seeds), (j + 1) * len(seeds))
                all_metrics[i] = {k: v[sl] for k, v in result.metrics.items()}
    finally:
        bar.stop()
        if writer is not None:
            writer.close()

    metrics = _stack_runs(all_metrics)
    total_steps = metrics["episode_return"].shape[1] * steps_per_update
    timing = {
        "compile_s": round(compile_s, 3),
        "run_s": round(run_s, 3),
        "env_steps_per_run": total_steps,
        "runs": len(configs) * len(seeds),
        "compiled_programs": len(groups),
        "steps_per_s": round(total_steps * len(configs) * len(seeds) / max(run_s, 1e-9), 1),
    }
    summary = rundir.make_summary(metrics, seeds * len(configs), timing=timing)
    if grid:
        summary["configurations"] = [
            {"values": lab, "final_return": rundir.summarize_runs(all_metrics[i])}
            for i, lab in enumerate(labels)
        ]
    if files is not None:
        _write_outputs(files, metrics, seeds, labels, steps_per_update, summary, algo, base_config)
    return SweepResult(
        configs, labels, seeds, metrics, steps_per_update, compile_s, run_s, summary, states
    )


def _env_name(cfg) -> str:
    return str(getattr(cfg, "env_id", None) or getattr(cfg, "env", ""))


def train(algo_module, config, seeds: Sequence[int] = (0,), out_dir=None, **kwargs) -> SweepResult:
    """Trains one Config over ``seeds`` (a sweep with an empty grid); see :func:`sweep`."""
    return sweep(algo_module, config, None, seeds, out_dir, **kwargs)


def _prepare_out(out: Path, record: dict, algo: str, base_config, seeds, grid) -> None:
    """Writes config.json, or checks that an existing one describes the same run."""
    path = out / "config.json"
    if path.exists():
        old = json.loads(path.read_text())
        for key in ("algo", "config", "seeds", "grid"):
            if json.loads(json.dumps(record[key])) != old.get(key):
                raise ValueError(
                    f"{out} holds a different run ({key} differs: {old.get(key)!r} there, "
                    f"{record[key]!r} now); choose another --out or resume it with --resume {out}"
                )
        return
    out.mkdir(parents=True, exist_ok=True)
    rundir.write_config(out, algo, base_config, seeds, grid=grid)


def _labels_columns(labels, seeds, idx=None) -> dict[str, list]:
    idx = range(len(labels)) if idx is None else idx
    names = list(labels[0]) if labels else []
    # Prefixed: a swept field may share its name with a metric (learning_rate).
    return {f"config.{n}": [labels[i][n] for i in idx for _ in seeds] for n in names}


def _write_partial(out, metrics, seeds, idx, labels, steps_per_update) -> None:
    rundir.write_metrics_csv(
        out, metrics, seeds * len(idx), steps_per_update, _labels_columns(labels, seeds, idx)
    )


def _write_outputs(out, metrics, seeds, labels, steps_per_update, summary, algo, cfg) -> None:
    runs_seeds = seeds * len(labels)
    rundir.write_metrics_csv(
        out,
        metrics,
        runs_seeds,
        steps_per_update,
        _labels_columns(labels, seeds) if labels[0] else None,
    )
    rundir.write_json(out / "summary.json", summary)
    curves = {}
    for i, lab in enumerate(labels):
        name = ", ".join(f"{k}={v}" for k, v in lab.items()) or algo
        curves[name] = metrics["episode_return"][i * len(seeds) : (i + 1) * len(seeds)]
    rundir.plot_curves(
        out / "curves.png",
        curves,
        steps_per_update,
        title=f"{algo} on {_env_name(cfg)} ({len(seeds)} seeds)",
    )


def _stack_runs(per_config: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([m[k] for m in per_config], axis=0) for k in per_config[0]}


class _Progress:
    """A rich progress bar: steps of the current program, steps/s over all runs, return."""

    def __init__(self, algo: str, env_id: str, enabled: bool):
        self.bar = None
        self.name = f"{algo} {env_id}".strip()
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps {task.fields[rate]} return {task.fields[ret]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.bar.start()
        self.task = None

    def add(self, total_steps: int, runs: int) -> None:
        if self.bar is None:
            return
        if self.task is not None:
            self.bar.update(self.task, visible=True)
        self.runs = runs
        self.start = time.perf_counter()
        self.task = self.bar.add_task(
            f"{self.name} (compiling)", total=total_steps, rate="", ret="-"
        )

    def update(self, steps: int, metrics: dict[str, np.ndarray]) -> None:
        if self.bar is None:
            return
        last = metrics["episode_return"][:, -1]
        ret = f"{np.nanmean(last):.1f}" if np.isfinite(last).any() else "-"
        rate = steps * self.runs / max(time.perf_counter() - self.start, 1e-9)
        self.bar.update(
            self.task, completed=steps, description=self.name, rate=f"({rate:,.0f}/s)", ret=ret
        )

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class _TensorBoard:
    """The same metrics as TensorBoard event files, one folder per run (needs tensorboardX)."""

    def __init__(self, out: Path, labels, seeds):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise ValueError(
                "--tensorboard needs tensorboardX: pip install 'jaxrl[tensorboard]'"
            ) from e
        self.writers = {}
        self.written = {}
        for i, lab in enumerate(labels):
            for s in seeds:
                tag = "_".join(f"{k}={v}" for k, v in lab.items())
                name = f"{tag + '_' if tag else ''}seed={s}"
                self.writers[(i, s)] = SummaryWriter(str(out / "tensorboard" / name))
        self.seeds = seeds

    def write(self, idx, metrics, done, steps_per_update) -> None:
        for j, i in enumerate(idx):
            for k, s in enumerate(self.seeds):
                r = j * len(self.seeds) + k
                start = self.written.get((i, s), 0)
                w = self.writers[(i, s)]
                for u in range(start, done):
                    for name, v in metrics.items():
                        val = float(v[r, u])
                        if np.isfinite(val):
                            w.add_scalar(name, val, (u + 1) * steps_per_update)
                self.written[(i, s)] = done

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
