"""``jaxrl llm sft|rm|dpo|grpo|rlhf``: the language-model stages with run directories.

Each stage writes ``config.json`` (the task or data file, and every input under
``inputs``, so a later stage's ``--from`` and this stage's ``--resume`` find them),
``metrics.csv`` (one row per update), ``evals.csv`` (one row per evaluation),
``summary.json``, ``curves.png``, ``checkpoint/`` (when the trainer writes checkpoints)
and ``model/``: ``params.msgpack`` and ``model_config.json`` (LoRA adapters merged in;
the adapters alone also in ``adapter/``) plus, for a model that came from a Hugging Face
directory, its tokenizer files, so ``--from`` of the next stage and ``jaxrl llm export``
have them.

    jaxrl llm sft --task addition --out runs/sft              # toy task, toy model
    jaxrl llm grpo --from runs/sft --out runs/grpo
    jaxrl llm sft --model MODEL_DIR --data train.jsonl --lora-rank 8 --out runs/sft
    jaxrl llm grpo --from runs/sft --data math.jsonl --reward accuracy+0.1*format --out runs/grpo
    jaxrl llm dpo --model MODEL_DIR --data prefs.jsonl --out runs/dpo
    jaxrl llm rlhf --from runs/sft --reward-model runs/rm --data prompts.jsonl --out runs/rlhf
    jaxrl llm sft --resume runs/sft                           # after Ctrl-C or a crash
    jaxrl llm export runs/grpo --out hf-model
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
from jaxrl.run.llm_inputs import (
    STAGES,
    check_inputs,
    data_task,
    read_record,
    resume_inputs,
    run_model_type,
    stats_line,
)
from jaxrl.run.progress import Progress
from jaxrl.run.writer import RunWriter  # the one run-directory writer (train, llm, solve)

__all__ = [
    "STAGES",
    "check_inputs",
    "config_class",
    "resume_inputs",
    "run_model_type",
    "run_stage",
    "summary_lines",
]


def config_class(stage: str) -> type:
    """The Config class of a stage: sft, rm, dpo, grpo or rlhf."""
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
    cls = config_class(stage)
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
    model_dir: Path | None = None,
    data: Path | None = None,
    eval_data: Path | None = None,
    reward: str | None = None,
    lora_rank: int | None = None,
    max_prompt_len: int | None = None,
    max_completion_len: int | None = None,
    dtype: str = "float32",
    resume: bool = False,
) -> dict:
    """Runs one stage and writes its run directory; returns the summary.

    Args:
        stage: sft, rm, dpo, grpo or rlhf.
        task: a toy task name (``--task``), or None.
        from_dir: run directory of an earlier stage (``--from``): its model, and its task
            or data file when neither ``task`` nor ``data`` is given.
        reward_model_dir: a reward-model run directory (grpo, rlhf).
        overrides: ``--set`` values as text (``model.X=`` for toy model sizes).
        out: the run directory.
        seed: PRNG seed.
        progress: show a progress bar.
        model_dir: a Hugging Face model directory (``--model``).
        data, eval_data: JSONL files (``--data``, ``--eval-data``).
        reward: a reward spec of :func:`jaxrl.llm.rewards.make_reward` (``--reward``).
        lora_rank: LoRA rank (``--lora-rank``; 0 = full fine-tuning), the Config's
            ``lora_rank``.
        max_prompt_len, max_completion_len: token limits of the data rows (longer prompts
            are dropped, longer completions truncated; counts in ``summary.json``).
        dtype: "float32" or "bfloat16": the params and compute dtype of a ``model_dir``
            model (``--dtype``).
        resume: continue from ``out/checkpoint`` (``--resume``).

    Raises:
        ValueError: bad input, one line (checked before anything compiles).
    """
    from jaxrl.llm import dpo, grpo, reward_model, rlhf, sft
    from jaxrl.llm.export import copy_tokenizer
    from jaxrl.llm.export import model_dir as run_model_dir
    from jaxrl.llm.lora import merge_lora, save_adapter
    from jaxrl.llm.rl_loop import LoadedModel
    from jaxrl.llm.transformer import save_model

    paths = {"from_dir": from_dir, "reward_model_dir": reward_model_dir, "model_dir": model_dir}
    paths.update(data=data, eval_data=eval_data)
    inputs = {k: None if v is None else str(Path(v).resolve()) for k, v in paths.items()}
    inputs.update(stage=stage, task=task, reward=reward, lora_rank=lora_rank, seed=seed)
    inputs.update(max_prompt_len=max_prompt_len, max_completion_len=max_completion_len)
    inputs["dtype"] = dtype
    inputs["overrides"] = dict(overrides or {})
    previous = read_record(from_dir) if from_dir is not None else {}
    if task is None and data is None and (previous.get("inputs") or {}).get("data"):
        # the earlier stage trained on a data file: this one continues on it
        for k in ("data", "eval_data", "reward", "max_prompt_len", "max_completion_len"):
            if inputs[k] is None:
                inputs[k] = previous["inputs"].get(k)
    check_inputs(
        stage,
        **{k: inputs[k] for k in ("task", "model_dir", "from_dir", "data", "eval_data")},
        reward=inputs["reward"],
        reward_model_dir=inputs["reward_model_dir"],
        lora_rank=lora_rank,
    )
    overrides = dict(overrides or {})
    if lora_rank is not None:
        overrides["lora_rank"] = str(lora_rank)
    if model_dir is not None:
        from jaxrl.llm.checkpoint import load_pretrained

        cfg, params = load_pretrained(str(model_dir), dtype=dtype)
        loaded, tokenizer_dir = LoadedModel(params, cfg, None), str(model_dir)
    elif from_dir is not None:
        loaded, tokenizer_dir = _load(from_dir), run_model_dir(str(from_dir))
    else:
        loaded, tokenizer_dir = None, None
    dataset = data_task(inputs, tokenizer_dir) if inputs["data"] is not None else None
    if dataset is None and task is None and loaded is not None and loaded.task is not None:
        task = loaded.task.name
        recorded = _recorded_options(from_dir)
        if recorded and "task_options" not in overrides:
            overrides["task_options"] = recorded
    pretrained = loaded is not None and loaded.model_config.model_type != "toy"
    model_config = loaded.model_config if loaded is not None and stage == "dpo" else None
    config = build_config(stage, task if dataset is None else None, overrides, model_config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = dict(getattr(dataset, "stats", {}) or {})
    record = {
        "stage": stage,
        "task": None if dataset is not None else getattr(config, "task", task),
        "task_options": [list(p) for p in getattr(config, "task_options", ())],
        "data": inputs["data"],
        "from": str(from_dir) if from_dir else None,
        "model": inputs["model_dir"],
        "reward_model": str(reward_model_dir) if reward_model_dir else None,
        "seed": seed,
        "inputs": inputs,
        "data_stats": _jsonable(stats),
        "config": _jsonable(dataclasses.asdict(config)),
        "machine": rundir.machine_info(),
    }
    RunWriter.for_stage(out, stage, seed).write_config(record)
    if stats:
        print(stats_line(stats))
    total = int(getattr(config, "num_steps", 0))
    bar = _progress(stage, total, progress)
    key = jax.random.PRNGKey(seed)
    ckpt = out / "checkpoint"
    # A pretrained start goes as a (params, ModelConfig) pair (the trainer takes its sizes);
    # a toy start as today's params (the Config's model describes them).
    pair = (loaded.params, loaded.model_config) if loaded is not None else None
    start_params = pair if pretrained else (loaded.params if loaded is not None else None)
    rm = str(reward_model_dir) if reward_model_dir else None
    start = time.perf_counter()
    try:
        # every trainer checkpoints after each evaluation into RUN/checkpoint (--resume)
        kw = {"checkpoint_dir": str(ckpt), "resume": resume}
        if dataset is not None:
            kw["task"] = dataset
        if stage in ("sft", "rm"):
            fn = sft.train_sft if stage == "sft" else reward_model.train_reward_model
            result = fn(config, key, bar, init_from=start_params, **kw)
        elif stage == "dpo":
            result = dpo.train_dpo(config, key, start_params, bar, **kw)
        else:
            fn = grpo.train_grpo if stage == "grpo" else rlhf.train_rlhf
            init = pair if pretrained else (str(from_dir) if from_dir else None)
            result = fn(config, key, init, reward_model=rm, progress_callback=bar, **kw)
    except KeyboardInterrupt as e:  # StageInterrupted: the metrics of the updates done
        metrics = getattr(e, "metrics", None) or {}
        if len(next(iter(metrics.values()), ())):
            RunWriter.for_stage(out, stage, seed).write_stage_partial(metrics)
        e.resumable = ckpt.is_dir()
        raise
    except ValueError as e:
        if getattr(e, "metrics", None) is None:  # bad input, raised before training
            raise
        RunWriter.for_stage(out, stage, seed).write_stage_partial(e.metrics)  # NonFiniteLoss
        raise ValueError(f"{e} ({out / 'metrics.csv'})") from None
    finally:
        bar.stop()
    wall = time.perf_counter() - start
    # model/ holds the merged weights (the next stage's reference); adapter/ the adapters.
    merged_config, merged = merge_lora(result.model_config, result.params)
    save_model(str(out / "model"), merged, merged_config)
    if result.model_config.lora_rank:
        save_adapter(str(out / "adapter"), result.model_config, result.params)
    if tokenizer_dir is not None:
        copy_tokenizer(tokenizer_dir, str(out / "model"))
    summary = {k: float(v) for k, v in result.summary.items()}
    # Every stage evaluates before its first update: keep that as before_* (the change).
    for k, v in result.evals.items():
        if k not in ("step", "wall_time") and f"before_{k}" not in summary:
            summary[f"before_{k}"] = float(np.asarray(v)[0])
    summary["wall_time_s"] = round(wall, 2)
    for k, v in stats.items():
        if isinstance(v, (int, float, np.integer, np.floating)):
            summary[f"data_{k}"] = float(v)
    RunWriter.for_stage(out, stage, seed).write_stage(result.metrics, result.evals, summary)
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
