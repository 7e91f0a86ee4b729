"""``jaxrl llm sft|rm|dpo|grpo|rlhf``: the language-model stages with run directories.

Each stage writes ``config.json`` (with the task, so a later stage finds it),
``metrics.csv`` (one row per update), ``evals.csv`` (one row per evaluation),
``summary.json``, ``curves.png`` and ``model/`` (``params.msgpack`` and
``model_config.json``, read back by ``--from`` of the next stage).

    jaxrl llm sft --task addition --out runs/sft
    jaxrl llm grpo --from runs/sft --out runs/grpo
    jaxrl llm sft --task preference --out runs/sft-pref
    jaxrl llm rm --task preference --from runs/sft-pref --out runs/rm
    jaxrl llm dpo --from runs/sft-pref --out runs/dpo
    jaxrl llm rlhf --from runs/sft-pref --reward-model runs/rm --out runs/rlhf
"""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl._config import parse_value
from jaxrl.run import rundir

__all__ = ["STAGES", "run_stage"]

STAGES = ("sft", "rm", "dpo", "grpo", "rlhf")


def _config_class(stage: str):
    from jaxrl.llm import dpo, grpo, reward_model, rlhf, sft

    return {
        "sft": sft.SFTConfig,
        "rm": reward_model.RewardModelConfig,
        "dpo": dpo.DPOConfig,
        "grpo": grpo.GRPOConfig,
        "rlhf": rlhf.RLHFConfig,
    }[stage]


def build_config(stage: str, task: str | None, overrides: dict[str, str], model_config=None):
    """The stage's Config from ``--task``, ``--set`` overrides (``model.X=`` for sizes) and
    the model of ``--from`` (whose sizes the new stage must keep)."""
    cls = _config_class(stage)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    model_changes: dict[str, Any] = {}
    from jaxrl.llm.transformer import ModelConfig

    for name, text in overrides.items():
        if name.startswith("model."):
            if "model" not in names:
                raise ValueError(f"{cls.__name__} has no model sizes to set ({name})")
            model_changes[name[6:]] = parse_value(ModelConfig, name[6:], text)
        else:
            values[name] = parse_value(cls, name, text) if isinstance(text, str) else text
    if task is not None:
        values["task"] = task
    if "model" in names:
        base = model_config
        if base is None and model_changes:
            base = cls(**values).model
        if base is not None:
            values["model"] = dataclasses.replace(base, **model_changes)
    return cls(**values)


class _Bar:
    def __init__(self, name: str, total: int, enabled: bool):
        self.bar = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
        )  # fmt: skip
        self.bar.start()
        self.task = self.bar.add_task(name, total=total, info="compiling")

    def __call__(self, step: int, numbers: dict[str, float]) -> None:
        if self.bar is None:
            return
        shown = {k: v for k, v in numbers.items() if isinstance(v, int | float)}
        keys = [k for k in shown if k.startswith("heldout") or k in ("score", "accuracy")][:3]
        info = " ".join(f"{k}={shown[k]:.3g}" for k in keys)
        self.bar.update(self.task, completed=step, info=info)

    def stop(self):
        if self.bar is not None:
            self.bar.stop()


def _load(path: Path):
    from jaxrl.llm.rl_loop import load_stage

    return load_stage(str(path))


def run_stage(
    stage: str,
    *,
    task: str | None = None,
    from_dir: Path | None = None,
    reward_model_dir: Path | None = None,
    overrides: dict[str, str] | None = None,
    out: Path,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Runs one stage and writes its run directory; returns the summary."""
    from jaxrl.llm import dpo, grpo, reward_model, rlhf, sft
    from jaxrl.llm.transformer import save_model

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    loaded = _load(from_dir) if from_dir is not None else None
    if stage in ("dpo", "rlhf") and loaded is None:
        raise ValueError(f"jaxrl llm {stage} needs --from DIR (an SFT run directory)")
    if task is None and loaded is not None and loaded.task is not None:
        task = loaded.task.name
        recorded = _recorded_options(from_dir)
        if recorded and "task_options" not in (overrides or {}):
            overrides = {**(overrides or {}), "task_options": recorded}
    model_config = loaded.model_config if loaded is not None and stage in ("dpo",) else None
    config = build_config(stage, task, overrides or {}, model_config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "stage": stage,
        "task": getattr(config, "task", task),
        "task_options": [list(p) for p in getattr(config, "task_options", ())],
        "from": str(from_dir) if from_dir else None,
        "reward_model": str(reward_model_dir) if reward_model_dir else None,
        "seed": seed,
        "config": _jsonable(dataclasses.asdict(config)),
        "machine": rundir.machine_info(),
    }
    rundir.write_json(out / "config.json", record)
    total = int(getattr(config, "num_steps", 0))
    bar = _Bar(f"llm {stage}", total, progress)
    key = jax.random.PRNGKey(seed)
    start = time.perf_counter()
    try:
        if stage == "sft":
            result = sft.train_sft(config, key, bar)
        elif stage == "rm":
            init = loaded.params if loaded is not None else None
            result = reward_model.train_reward_model(config, key, bar, init_from=init)
        elif stage == "dpo":
            result = dpo.train_dpo(config, key, loaded.params, bar)
        elif stage == "grpo":
            rm = str(reward_model_dir) if reward_model_dir else None
            init = str(from_dir) if from_dir else None
            result = grpo.train_grpo(
                config, key, init_from=init, reward_model=rm, progress_callback=bar
            )
        else:
            rm = str(reward_model_dir) if reward_model_dir else None
            result = rlhf.train_rlhf(
                config, key, init_from=str(from_dir), reward_model=rm, progress_callback=bar
            )
    finally:
        bar.stop()
    wall = time.perf_counter() - start
    save_model(str(out / "model"), result.params, result.model_config)
    _write_rows(out / "metrics.csv", result.metrics, "update")
    _write_rows(out / "evals.csv", result.evals, None)
    summary = {**{k: float(v) for k, v in result.summary.items()}, "wall_time_s": round(wall, 2)}
    rundir.write_json(out / "summary.json", summary)
    _plot(out / "curves.png", result, stage)
    return summary


def _recorded_options(run_dir: Path) -> tuple:
    """The task options a previous stage recorded in its config.json (as pairs)."""
    import json

    path = Path(run_dir) / "config.json"
    if not path.exists():
        return ()
    record = json.loads(path.read_text())
    options = record.get("task_options") or record.get("config", {}).get("task_options") or ()
    return tuple(tuple(p) for p in options)


def _jsonable(d):
    import json

    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


def _write_rows(path: Path, table: dict[str, np.ndarray], index: str | None) -> None:
    names = sorted(table)
    if not names:
        return
    n = len(np.asarray(table[names[0]]))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(([index] if index else []) + names)
        for i in range(n):
            row = [f"{float(np.asarray(table[k])[i]):.6g}" for k in names]
            w.writerow(([i + 1] if index else []) + row)


def _plot(path: Path, result, stage: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "loss" if "loss" in result.metrics else "reward_mean"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    y = np.asarray(result.metrics.get(metric, []), dtype=float)
    axes[0].plot(np.arange(1, len(y) + 1), y)
    axes[0].set_xlabel("update")
    axes[0].set_ylabel(metric)
    steps = np.asarray(result.evals.get("step", []), dtype=float)
    for k, v in result.evals.items():
        if k != "step" and any(s in k for s in ("score", "accuracy")):
            axes[1].plot(steps, np.asarray(v, dtype=float), marker="o", label=k)
    axes[1].set_xlabel("update")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"jaxrl llm {stage}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
