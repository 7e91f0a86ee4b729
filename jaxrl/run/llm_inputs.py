"""What a language-model stage starts from: checks of the flags, the data task, ``--resume``.

Everything here runs before a model is loaded or a program compiled, so a mistake on
the command line (a missing directory or file, ``--data`` with a toy ``--task``,
``--lora-rank`` on the toy model, an unknown reward) is answered at once with one line
(``ValueError``; the CLI prints it and exits with status 2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "check_inputs",
    "data_task",
    "read_record",
    "resume_inputs",
    "run_model_type",
    "stats_line",
]

STAGES = ("sft", "rm", "dpo", "grpo", "rlhf")


def read_record(run_dir) -> dict:
    """A run directory's config.json (empty when it has none)."""
    import json

    path = Path(run_dir) / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def run_model_type(run_dir) -> str:
    """``model_type`` of the model a run directory holds ("toy", "llama", ...)."""
    import json

    from jaxrl.llm.export import model_dir

    cfg = json.loads((Path(model_dir(str(run_dir))) / "model_config.json").read_text())
    return cfg.get("model_type", "toy")


def check_inputs(
    stage: str,
    *,
    task: str | None = None,
    model_dir: str | None = None,
    from_dir: str | None = None,
    data: str | None = None,
    eval_data: str | None = None,
    reward: str | None = None,
    reward_model_dir: str | None = None,
    lora_rank: int | None = None,
) -> None:
    """Checks what a stage starts from, before anything loads or compiles.

    Raises:
        ValueError: one line naming the flag, the value and what is allowed.
    """
    from jaxrl.llm.export import model_dir as run_model_dir

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    if model_dir is not None and from_dir is not None:
        raise ValueError(f"--model {model_dir} and --from {from_dir}: give one starting model")
    if model_dir is not None:
        if not Path(model_dir).is_dir():
            raise ValueError(f"--model {model_dir}: no such directory")
        for name in ("config.json", "tokenizer.json"):
            if not (Path(model_dir) / name).is_file():
                raise ValueError(
                    f"--model {model_dir}: no {name} there (a Hugging Face model directory "
                    "holds config.json, model.safetensors and tokenizer.json)"
                )
    for flag, path in (("--from", from_dir), ("--reward-model", reward_model_dir)):
        if path is not None:
            try:
                run_model_dir(str(path))
            except ValueError as e:
                raise ValueError(f"{flag} {e}") from None
    if stage in ("dpo", "rlhf") and model_dir is None and from_dir is None:
        raise ValueError(
            f"jaxrl llm {stage} needs a starting policy: --from RUN (an SFT run directory) "
            "or --model DIR (a Hugging Face model directory)"
        )
    pretrained = model_dir is not None or (
        from_dir is not None and run_model_type(from_dir) != "toy"
    )
    if data is not None and task is not None:
        raise ValueError(
            f"--data {data} and --task {task}: a stage trains on one of them (write the toy "
            f"task as JSONL with: jaxrl llm data --task {task} --out FILE.jsonl)"
        )
    for flag, path in (("--data", data), ("--eval-data", eval_data)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{flag} {path}: no such file")
    if eval_data is not None and data is None:
        raise ValueError(f"--eval-data {eval_data} needs --data FILE (the training rows)")
    if data is not None and not pretrained:
        raise ValueError(
            f"--data {data} needs a pretrained model and its tokenizer: --model DIR, or "
            "--from RUN of a stage that started from one (the toy model has no tokenizer)"
        )
    if data is not None and from_dir is not None:
        where = Path(run_model_dir(str(from_dir)))
        if not (where / "tokenizer.json").is_file():
            raise ValueError(
                f"--from {from_dir}: no tokenizer.json in {where} (a stage started from "
                "--model DIR copies its tokenizer there)"
            )
    if lora_rank is not None:
        if not isinstance(lora_rank, int) or lora_rank < 0:
            raise ValueError(f"--lora-rank must be a whole number >= 0, got {lora_rank!r}")
        if lora_rank and not pretrained:
            raise ValueError(
                f"--lora-rank {lora_rank} needs a pretrained model (--model DIR, or --from a "
                "run started from one); the toy model trains in full"
            )
    if reward is not None:
        if data is None:
            raise ValueError(
                f"--reward {reward} scores the rows of --data FILE; a toy --task scores "
                "completions itself"
            )
        from jaxrl.llm.rewards import make_reward

        make_reward(reward)  # an unknown name or a bad module:function raises here


def data_task(inputs: dict, tokenizer_dir: str):
    """The ``DatasetTask`` of ``--data`` (and ``--eval-data``, ``--reward``, length limits)."""
    from jaxrl.llm.data import dataset_task

    limits = {
        k: inputs[k] for k in ("max_prompt_len", "max_completion_len") if inputs.get(k) is not None
    }
    task = dataset_task(
        inputs["data"],
        tokenizer_dir,
        eval_path=inputs.get("eval_data"),
        reward=inputs.get("reward"),
        **limits,
    )
    for split, fix in (("train", "--data"), ("heldout", "--eval-data FILE")):
        if task.stats.get(split) == 0:  # say it in flags, before the trainer asks for rows
            raise ValueError(
                f"{inputs['data']}: no {split} rows are left ({stats_line(task.stats)[6:]}); "
                f"give {fix} with more rows"
                + (
                    " (few distinct prompts hash into no held-out row)"
                    if split == "heldout"
                    else ""
                )
            )
    return task


def stats_line(stats: dict) -> str:
    """``data: 1,000 rows, 3 dropped, 12 truncated`` from a ``DatasetTask.stats`` dict."""
    parts = [f"{v:,} {k}" for k, v in stats.items() if isinstance(v, (int, np.integer))]
    return "data: " + ", ".join(parts)


def resume_inputs(run_dir: Path) -> dict:
    """The ``run_stage`` keyword arguments a run directory recorded (for ``--resume``).

    Raises:
        ValueError: not a run directory of a language-model stage.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"--resume {run_dir}: no such directory")
    inputs = read_record(run_dir).get("inputs")
    if not inputs:
        raise ValueError(
            f"--resume {run_dir}: config.json records no stage inputs (not a run directory "
            "of jaxrl llm sft|rm|dpo|grpo|rlhf)"
        )
    out = {k: v for k, v in inputs.items() if k != "stage"}
    for k in ("from_dir", "reward_model_dir", "model_dir", "data", "eval_data"):
        out[k] = None if out.get(k) is None else Path(out[k])
    return {"stage": inputs["stage"], **out}
