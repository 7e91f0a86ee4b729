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

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl._config import parse_value
from jaxrl.run import rundir
from jaxrl.run.progress import Progress

__all__ = ["STAGES", "run_stage", "summary_lines"]

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


def _progress(stage: str, total: int, enabled: bool) -> Callable[[int, dict], None]:
    """A ``progress_callback(step, numbers)`` on :class:`Progress` (a bar, or plain lines)."""
    bar = Progress(f"llm {stage}", unit="updates", value_label="held-out", enabled=enabled)
    bar.add(total)
    started = [False]

    def callback(step: int, numbers: dict[str, float]) -> None:
        if not started[0]:  # the first chunk compiled the program: the rate starts here
            bar.started(step)
            started[0] = True
        key = next((k for k in _HEADLINE if k in numbers), None)
        bar.value_label = f"held-out {_name(key)}" if key else "held-out"
        bar.update(step, None if key is None else float(numbers[key]))

    callback.stop = bar.stop
    return callback


# The numbers a stage's before → after lines show, in this order (held-out evaluations).
_HEADLINE = ("heldout_accuracy", "accuracy", "heldout_pref_accuracy", "heldout_score", "score")
_LABELS = {
    "accuracy": "accuracy (greedy, exact answers)",
    "sampled_accuracy": "accuracy (sampled at τ = 1)",
    "score": "score",
    "rm_score": "reward-model score",
    "pref_accuracy": "preference accuracy",
    "loss": "loss",
    "kl_ref": "KL to the reference (nats per completion)",
}


def _name(key: str) -> str:
    k = key.removeprefix("heldout_")
    return _LABELS.get(k, k.replace("_", " "))


def summary_lines(summary: dict) -> list[str]:
    """``held-out accuracy (greedy, exact answers) 0.988 → 0.906``-style lines of a stage.

    One line per held-out number evaluated both before the first update (``before_*``)
    and after the last; then the wall time.
    """
    lines = []
    for key in sorted(summary, key=lambda k: (k not in _HEADLINE, _order(k), k)):
        before = summary.get(f"before_{key}")
        if key.startswith("before_") or before is None or key in ("step", "wall_time"):
            continue
        if "kl_ref_k3" in key or "length" in key:
            continue
        lines.append(f"held-out {_name(key)}: {before:.3f} → {summary[key]:.3f}")
    if "wall_time_s" in summary:
        lines.append(f"wall time {summary['wall_time_s']:.1f} s")
    return lines


def _order(key: str) -> int:
    k = key.removeprefix("heldout_")
    return list(_LABELS).index(k) if k in _LABELS else len(_LABELS)


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
    from jaxrl.llm.training import NonFiniteLoss, StageInterrupted
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
    bar = _progress(stage, total, progress)
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
    except NonFiniteLoss as e:
        rundir.write_table_csv(out / "metrics.csv", e.metrics, "update")
        raise ValueError(f"{e} ({out / 'metrics.csv'})") from None
    except StageInterrupted as e:
        if e.updates_done:
            rundir.write_table_csv(out / "metrics.csv", e.metrics, "update")
        raise
    finally:
        bar.stop()
    wall = time.perf_counter() - start
    save_model(str(out / "model"), result.params, result.model_config)
    rundir.write_table_csv(out / "metrics.csv", result.metrics, "update")
    rundir.write_table_csv(out / "evals.csv", result.evals)
    summary = {k: float(v) for k, v in result.summary.items()}
    # Every stage evaluates before its first update: keep that as before_* (the change).
    for k, v in result.evals.items():
        if k not in ("step", "wall_time") and f"before_{k}" not in summary:
            summary[f"before_{k}"] = float(np.asarray(v)[0])
    summary["wall_time_s"] = round(wall, 2)
    rundir.write_json(out / "summary.json", summary)
    rundir.plot_stage(out / "curves.png", result.metrics, result.evals, f"jaxrl llm {stage}")
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
