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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl._config import config_from_overrides, config_to_dict, static_fields
from jaxrl.run import rundir
from jaxrl.run.experiment import (
    NonFiniteError,
    RunInterrupted,
    RunResult,
    run_seeds,
    stack_configs,
)
from jaxrl.run.progress import Progress
from jaxrl.run.writer import RunWriter

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
    eval_every: int | None = None,
    eval_episodes: int = 10,
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
      eval_every: evaluate the deterministic policy of every run each time this many
        updates pass (into ``out_dir/evals.csv`` and ``eval_curves.png``); None: never.
      eval_episodes: episodes per run and evaluation.

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
    unit = rundir.progress_unit(base_config)
    writer = RunWriter(files, algo, _env_name(base_config), labels, seeds, unit)
    if tensorboard:
        writer.add_tensorboard()

    num_runs = len(configs) * len(seeds)
    metrics: dict[str, np.ndarray] | None = None  # each [configs * seeds, updates]
    states, compile_s, run_s, steps_per_update, finished = [], 0.0, 0.0, 1, True
    devices = 1  # the most devices one compiled group's runs were sharded over
    bar = Progress(f"{algo} {_env_name(base_config)}".strip(), unit.replace("_", " "),
                   enabled=progress and main_process)  # fmt: skip
    try:
        for g, idx in enumerate(groups):
            group_cfgs = [configs[i] for i in idx]
            from jaxrl.run.data_parallel import agent_for_runs  # 1 run, --devices N: split

            agent = agent_for_runs(
                algo_module, group_cfgs[0], len(idx) * len(seeds), log, **(agent_kwargs or {})
            )
            steps_per_update = agent.steps_per_update
            run_cfgs = [c for c in group_cfgs for _ in seeds]
            batched = stack_configs(run_cfgs) if grid else group_cfgs[0]
            rows = np.concatenate([np.arange(i * len(seeds), (i + 1) * len(seeds)) for i in idx])
            evals = None
            if eval_every is not None:  # evals.csv, eval_curves.png: jaxrl/run/evaluate.py
                from jaxrl.run.evaluate import TrainingEvaluation

                evals = TrainingEvaluation(
                    files, algo, group_cfgs[0], rows, seeds * len(idx), eval_every,
                    eval_episodes, agent.steps_per_update, agent.num_updates,
                )  # fmt: skip
            ckpt = None
            if out is not None and checkpoint:
                from jaxrl.run.checkpoint import Checkpointer

                sub = "checkpoints" if len(groups) == 1 else f"checkpoints/group-{g}"
                ckpt = Checkpointer(out / sub, keep=keep)
            bar.add(agent.num_updates * agent.steps_per_update, len(run_cfgs))

            def describe(r, idx=idx):
                lab = labels[idx[r // len(seeds)]]
                return ", ".join(f"{k}={v}" for k, v in lab.items()) or "base config"

            def on_chunk(done, chunk_metrics, state, rows=rows, spu=agent.steps_per_update):
                last = chunk_metrics["episode_return"][:, -1]
                bar.update(done * spu, float(np.nanmean(last)) if np.isfinite(last).any() else None)
                writer.on_chunk(rows, chunk_metrics, done, spu)

            try:
                result: RunResult = run_seeds(
                    agent,
                    batched,
                    seeds * len(group_cfgs),
                    config_axis=0 if grid else None,
                    chunk_updates=chunk_updates or eval_every,
                    on_chunk=on_chunk,
                    checkpointer=ckpt,
                    describe_run=describe,
                    on_start=lambda done, spu=agent.steps_per_update: bar.started(done * spu),
                    evaluate=evals,
                )
            except (NonFiniteError, RunInterrupted) as e:
                metrics = _place(metrics, rows, e.metrics, num_runs, e.updates_done)
                writer.write_partial(metrics, steps_per_update, e.updates_done)
                raise
            finally:
                if ckpt is not None:
                    ckpt.close()
            finished = finished and result.resumed_from == agent.num_updates
            if result.resumed_from and not finished:
                log(f"resumed from the checkpoint after update {result.resumed_from}")
            compile_s += result.compile_s
            run_s += result.run_s
            devices = max(devices, result.devices)
            states.append(result.state)
            metrics = _place(metrics, rows, result.metrics, num_runs)
    finally:
        bar.stop()
        writer.close()

    previous = rundir.read_summary(files) if files is not None and finished else None
    if previous is not None and "stopped_after_update" not in previous:
        # Nothing ran: keep the files (and the timing measured when the run happened).
        log(f"{out} holds a finished run ({metrics['episode_return'].shape[1]} updates); "
            "its files are left as they are")  # fmt: skip
        summary = previous
    else:
        summary = _summary(metrics, seeds, labels, steps_per_update, compile_s, run_s, groups)
        summary["devices"] = _devices_used(devices)
        writer.write(metrics, steps_per_update, summary)
    return SweepResult(
        configs, labels, seeds, metrics, steps_per_update, compile_s, run_s, summary, states
    )


def _place(metrics, rows, group_metrics, num_runs, updates=None) -> dict[str, np.ndarray]:
    """Puts one compiled group's runs into the rows ``rows`` of the sweep's metrics.

    With one group (every sweep over traced fields) its arrays are the sweep's arrays.
    """
    if metrics is None and len(rows) == num_runs:
        return dict(group_metrics)
    if metrics is None:
        metrics = {
            k: np.full((num_runs,) + v.shape[1:], np.nan, np.float32)
            for k, v in group_metrics.items()
        }
    for k, v in group_metrics.items():
        if v.shape[1] != metrics[k].shape[1]:  # an interrupted group: fewer updates
            width = min(v.shape[1], metrics[k].shape[1])
            metrics = {n: m[:, :width] for n, m in metrics.items()}
            v = v[:, :width]
        metrics[k][rows] = v
    return metrics


def _summary(metrics, seeds, labels, steps_per_update, compile_s, run_s, groups) -> dict:
    runs = metrics["episode_return"].shape[0]
    total_steps = metrics["episode_return"].shape[1] * steps_per_update
    timing = {
        "compile_s": round(compile_s, 3),
        "run_s": round(run_s, 3),
        "env_steps_per_run": total_steps,
        "runs": runs,
        "compiled_programs": len(groups),
        # 0 when nothing ran (a finished run read back): no rate was measured.
        "steps_per_s": round(total_steps * runs / run_s, 1) if run_s > 0 else 0.0,
    }
    summary = rundir.make_summary(metrics, seeds * len(labels), timing=timing)
    if any(labels):
        summary["configurations"] = [
            {
                "values": lab,
                "final_return": rundir.summarize_runs(
                    {
                        "episode_return": metrics["episode_return"][
                            i * len(seeds) : (i + 1) * len(seeds)
                        ]
                    }
                ),
            }
            for i, lab in enumerate(labels)
        ]
    return summary


def _devices_used(used: int) -> dict:
    """summary.json's ``devices``: how many ran the runs, of which kind, of how many there."""
    available = jax.devices()
    return {
        "used": used,
        "kind": available[0].platform,
        "device_kind": available[0].device_kind,
        "available": len(available),
        "processes": jax.process_count(),
    }


def _env_name(cfg) -> str:
    return str(getattr(cfg, "env_id", None) or getattr(cfg, "env", ""))


def train(algo_module, config, seeds: Sequence[int] = (0,), out_dir=None, **kwargs) -> SweepResult:
    """Trains one Config over ``seeds`` (a sweep with an empty grid); see :func:`sweep`."""
    return sweep(algo_module, config, None, seeds, out_dir, **kwargs)


def _prepare_out(out: Path, record: dict, algo: str, base_config, seeds, grid) -> None:
    """Writes config.json, or checks that an existing one describes the same run."""
    rundir.check_writable(out)
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
    RunWriter(out, algo, "", [{}], seeds).write_config({**record, "machine": rundir.machine_info()})
