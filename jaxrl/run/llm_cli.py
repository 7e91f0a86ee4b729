"""``jaxrl llm ...``: the language-model commands of the ``jaxrl`` CLI.

    jaxrl llm sft|rm|dpo|grpo|rlhf (--task NAME | --model DIR | --from RUN) [--data FILE] ...
    jaxrl llm STAGE --resume RUN
    jaxrl llm export RUN --out DIR
    jaxrl llm data --task NAME [--split train] [--n 1000] --out FILE.jsonl
    jaxrl llm generate --model DIR --prompt TEXT

The arguments are parsed by :mod:`jaxrl.cli` (see its docstring for every flag); a
mistake is a :class:`jaxrl.cli.UsageError` (one line, exit status 2). The stages
themselves run in :mod:`jaxrl.run.llm`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from jaxrl.cli import UsageError, _parse_sets, _quick, _suggest

__all__ = ["cmd_llm"]

# One chunk of 4 updates (evaluated before and after it): the chunk compiles once. As many
# training pairs as held-out pairs: their log-probabilities share one compiled program.
_QUICK_LLM = {
    "num_steps": "4",
    "eval_every": "4",
    "eval_prompts": "16",
    "eval_pairs": "16",
    "batch_size": "8",
    "num_train_examples": "256",
    "num_train_pairs": "16",
    "num_train_prompts": "64",
    "num_prompts": "4",
    "num_minibatches": "1",
    "group_size": "4",
    "warmup_steps": "1",
}


def _quick_llm(args) -> dict[str, str]:
    """The ``--set`` overrides of a tiny LLM stage (the user's own ``--set`` win)."""
    import dataclasses

    from jaxrl.run.llm import config_class

    names = {f.name for f in dataclasses.fields(config_class(args.stage))}
    quick = {k: v for k, v in _QUICK_LLM.items() if k in names}
    pretrained = args.model is not None
    if args.from_dir is not None and not pretrained:
        from jaxrl.run.llm import run_model_type

        try:
            pretrained = run_model_type(args.from_dir) != "toy"
        except ValueError:  # no model there: run_stage says so
            pass
    if "model" in names and not pretrained:  # also with --from: a quick chain shares sizes
        quick.update({"model.num_layers": "1", "model.d_model": "32", "model.d_ff": "64"})
    own = _parse_sets(args.set or [])
    if "num_steps" in own and "eval_every" in quick and "eval_every" not in own:
        quick["eval_every"] = own["num_steps"]  # still one chunk
    print(f"JAXRL_QUICK=1: {', '.join(f'{k}={v}' for k, v in quick.items())}")
    return {**quick, **own}


# Flags of `jaxrl llm STAGE` that --resume takes from the run's config.json instead.
_LLM_INPUTS = {
    "task": "--task", "from_dir": "--from", "model": "--model", "data": "--data",
    "eval_data": "--eval-data", "reward": "--reward", "reward_model": "--reward-model",
    "lora_rank": "--lora-rank", "max_prompt_len": "--max-prompt-len",
    "max_completion_len": "--max-completion-len", "set": "--set", "out": "--out",
}  # fmt: skip


def _precheck_llm(args) -> None:
    """Checks of ``jaxrl llm STAGE`` that need no jax: the flags that go together."""
    if args.resume is not None:
        if not args.resume.is_dir():
            raise UsageError(f"--resume {args.resume}: no such directory")
        given = [flag for k, flag in _LLM_INPUTS.items() if getattr(args, k, None) is not None]
        if given:
            raise UsageError(
                f"--resume {args.resume} continues with the inputs in its config.json; "
                f"drop {', '.join(given)}"
            )
        return
    for flag, value in (
        ("--lora-rank", args.lora_rank),
        ("--max-prompt-len", args.max_prompt_len),
        ("--max-completion-len", args.max_completion_len),
    ):
        if value is not None and value < (0 if flag == "--lora-rank" else 1):
            low = 0 if flag == "--lora-rank" else 1
            raise UsageError(f"{flag} must be a whole number >= {low}, got {value}")
    if args.reward is not None and args.reward.startswith("rm:"):
        if args.reward_model is not None:
            raise UsageError(f"--reward {args.reward} and --reward-model: give one reward model")
        args.reward_model, args.reward = Path(args.reward[3:]), None
    if args.dtype != "float32" and args.model is None:
        raise UsageError(f"--dtype {args.dtype} applies to --model DIR (a Hugging Face model)")
    if args.reward_model is not None and args.stage not in ("grpo", "rlhf"):
        raise UsageError(f"--reward-model is for grpo and rlhf, not {args.stage}")


def _cmd_llm_export(args) -> int:
    """``jaxrl llm export RUN --out DIR``: a merged Hugging Face directory."""
    if args.run is None or args.out is None:
        raise UsageError("jaxrl llm export RUN --out DIR: name the run directory and --out")
    from jaxrl.llm.export import export_run

    try:
        info = export_run(str(args.run), str(args.out))
    except ValueError as e:
        raise UsageError(str(e).splitlines()[0]) from None
    merged = f", LoRA rank {info['lora_rank']} merged" if info["lora_rank"] else ""
    print(
        f"exported {info['model_type']} ({info['num_params']:,} parameters{merged}) "
        f"with {len(info['tokenizer_files'])} tokenizer files to {args.out}"
    )
    if not info["tokenizer_files"]:
        print(f"note: {args.run} holds no tokenizer files; copy them into {args.out}")
    return 0


def _cmd_llm_data(args) -> int:
    """``jaxrl llm data --task NAME --out FILE.jsonl``: a toy task's rows as JSONL."""
    if args.task is None or args.out is None:
        raise UsageError("jaxrl llm data --task NAME --out FILE.jsonl: name the task and --out")
    if args.split not in ("train", "heldout"):
        raise UsageError(f"--split must be train or heldout, got {args.split!r}")
    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    from jaxrl._config import parse_value
    from jaxrl.llm.data import write_jsonl
    from jaxrl.llm.tasks import TASKS, make_task

    if args.task not in TASKS:
        known = sorted(TASKS)
        raise UsageError(
            f"unknown task {args.task!r}{_suggest(args.task, known)}; known: {', '.join(known)}"
        )
    try:  # --set NAME=VALUE are the task's options (e.g. num_digits=1)
        options = {
            k: parse_value(TASKS[args.task], k, v) for k, v in _parse_sets(args.set or []).items()
        }
        task = make_task(args.task, **options)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        written = write_jsonl(task, str(args.out), args.split, args.n)
    except ValueError as e:
        raise UsageError(str(e).splitlines()[0]) from None
    rows = f"{written:,} rows" if isinstance(written, int) else "rows"
    print(f"wrote {rows} of {args.task} ({args.split}) to {args.out}")
    return 0


def cmd_llm(args) -> int:
    """Runs ``jaxrl llm STAGE ...`` (parsed by ``jaxrl.cli``); returns the exit status."""
    if args.stage == "generate":  # sampling from a pretrained model: jaxrl/llm/cli_generate.py
        from jaxrl.llm.cli_generate import run as run_generate

        try:
            return run_generate(args)
        except ValueError as e:
            raise UsageError(str(e).splitlines()[0]) from None
    if args.stage == "export":
        return _cmd_llm_export(args)
    if args.run is not None:
        raise UsageError(f"jaxrl llm {args.stage}: unexpected argument {str(args.run)!r}")
    if args.stage == "data":
        return _cmd_llm_data(args)
    from jaxrl.run.llm import STAGES, resume_inputs, run_stage

    if args.stage not in STAGES:
        known = (*STAGES, "generate", "export", "data")
        raise UsageError(
            f"unknown stage {args.stage!r}{_suggest(args.stage, known)}; known: {', '.join(known)}"
        )
    _precheck_llm(args)
    try:
        if args.resume is not None:
            inputs = resume_inputs(args.resume)
            if inputs.pop("stage") != args.stage:
                raise ValueError(
                    f"--resume {args.resume}: a jaxrl llm {_read_stage(args.resume)} run, "
                    f"not {args.stage}"
                )
            out = args.resume
        else:
            inputs = {
                "task": args.task,
                "from_dir": args.from_dir,
                "reward_model_dir": args.reward_model,
                "model_dir": None if args.model is None else Path(args.model),
                "data": args.data,
                "eval_data": args.eval_data,
                "reward": args.reward,
                "lora_rank": args.lora_rank,
                "max_prompt_len": args.max_prompt_len,
                "max_completion_len": args.max_completion_len,
                "seed": args.seed,
                "dtype": args.dtype,
                "overrides": _quick_llm(args) if _quick() else _parse_sets(args.set or []),
            }
            if _quick() and args.data is not None and args.max_completion_len is None:
                inputs["max_completion_len"] = 32  # quick: short generations of a real model
                print("JAXRL_QUICK=1: --max-completion-len 32")
            out = args.out or Path("runs") / f"llm-{args.stage}-{time.strftime('%Y%m%d-%H%M%S')}"
        summary = run_stage(
            args.stage,
            **inputs,
            out=out,
            progress=not args.no_progress,
            resume=args.resume is not None,
        )
    except ValueError as e:
        raise UsageError(str(e).splitlines()[0]) from None
    except KeyboardInterrupt as e:  # StageInterrupted: metrics.csv holds the updates done
        done = getattr(e, "updates_done", 0)
        where = f"; metrics so far in {out}/metrics.csv" if done else ""
        how = (
            f"continue with: jaxrl llm {args.stage} --resume {out}"
            if getattr(e, "resumable", False)
            else "no checkpoint was written yet"
        )
        print(f"stopped after update {done}{where}; {how}", file=sys.stderr)
        return 130
    from jaxrl.run.llm import summary_lines

    for line in summary_lines(summary):
        print(line)
    print(f"run directory: {out}")
    return 0


def _read_stage(run_dir: Path) -> str:
    import json

    return json.loads((Path(run_dir) / "config.json").read_text()).get("stage", "?")
