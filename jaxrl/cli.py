"""The ``jaxrl`` command.

    jaxrl train ALGO [--env ENV_ID] [--seeds N] [--total-steps N] [--out DIR] [--set k=v ...]
    jaxrl llm sft|rm|dpo|grpo|rlhf (--task NAME | --model DIR [--dtype bfloat16] | --from RUN)
        [--data FILE] [--eval-data FILE] [--reward SPEC | --reward-model RUN] [--lora-rank R]
        [--max-prompt-len N] [--max-completion-len N] [--set k=v ...] [--out DIR]
    jaxrl llm sft --resume RUN                  # continue a stopped run from its checkpoint
    jaxrl llm export RUN --out DIR              # a merged Hugging Face model directory
    jaxrl llm data --task NAME [--split train] [--n 1000] --out FILE.jsonl
    jaxrl llm generate --model DIR --prompt TEXT [--chat] [--greedy]
    jaxrl list

The data rows' token limits are flags, not Config fields: ``--max-prompt-len`` (longer
prompts are dropped) and ``--max-completion-len`` (longer completions are cut; it is also
the generation length of grpo and rlhf); the counts go to the run log and summary.json.

A mistake on the command line (an unknown algorithm, environment or field, a
bad value) is answered with one line naming what is allowed, and exit status 2.

This module holds the parser and the small subcommands; the names and counts checked
before jax is imported are in :mod:`jaxrl.cli_checks`, and the larger subcommands in
:mod:`jaxrl.run.train_cli` (train), :mod:`jaxrl.run.llm_cli` (llm) and
:mod:`jaxrl.run.evaluate` (eval).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jaxrl
from jaxrl.cli_checks import (  # _parse_sets, _quick: jaxrl/run/llm_cli.py imports them from here
    SOLVE_METHODS,
    TABULAR_ENVS,
    UsageError,
    _check_env,
    _parse_sets,  # noqa: F401
    _precheck_train,
    _quick,  # noqa: F401
    _suggest,
)

__all__ = ["main"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; we want one line
        raise UsageError(f"{self.prog}: {message}")


def _cmd_train(args) -> int:
    from jaxrl.run.train_cli import cmd_train  # jaxrl train: jaxrl/run/train_cli.py

    return cmd_train(args)


def _cmd_list(args) -> int:
    from jaxrl import envs
    from jaxrl.agents import ALGORITHMS
    from jaxrl.tabular import SOLVERS, TABULAR_ENVS
    from jaxrl.tabular.agents import ALGORITHMS as TABULAR

    print("algorithms:", ", ".join(sorted(ALGORITHMS)))
    print("tabular algorithms:", ", ".join(TABULAR))
    print("environments:", ", ".join(envs.registered_envs()))
    print("tabular environments:", ", ".join(sorted(TABULAR_ENVS)))
    print("solvers (jaxrl solve):", ", ".join(SOLVERS))
    return 0


def _cmd_llm(args) -> int:
    from jaxrl.run.llm_cli import cmd_llm  # jaxrl llm ...: jaxrl/run/llm_cli.py

    return cmd_llm(args)


def _cmd_solve(args) -> int:
    if args.method not in SOLVE_METHODS:
        raise UsageError(
            f"unknown method {args.method!r}{_suggest(args.method, SOLVE_METHODS)}; "
            f"known: {', '.join(SOLVE_METHODS)}"
        )
    if args.env not in TABULAR_ENVS:
        raise UsageError(
            f"unknown environment {args.env!r}{_suggest(args.env, TABULAR_ENVS)}; "
            f"tabular environments: {', '.join(TABULAR_ENVS)}"
        )
    from jaxrl.run.writer import RunWriter
    from jaxrl.tabular import SOLVERS, format_solution, solve

    if args.method not in SOLVERS:
        raise UsageError(f"unknown method {args.method!r}; known: {', '.join(SOLVERS)}")
    _check_env(args.env, "env")
    try:
        solution = solve(args.method, args.env, gamma=args.gamma, tol=args.tol)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(format_solution(solution))
    out = args.out or Path("runs") / f"{args.method}-{args.env}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        RunWriter.for_solution(out, args.method, args.env).write_solution(solution, args.tol)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"run directory: {out}")
    return 0


def _cmd_eval(args) -> int:
    from jaxrl.run.evaluate import cmd_eval  # evaluation, video: jaxrl/run/evaluate.py

    return cmd_eval(args)


def _parser(llm_generate: bool = True) -> argparse.ArgumentParser:
    p = _Parser(prog="jaxrl", description="Reinforcement learning as pure JAX functions.")
    p.add_argument("--version", action="version", version=f"jaxrl {jaxrl.__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train an algorithm over several seeds in one program")
    t.add_argument("algo", nargs="?", help="algorithm name (see `jaxrl list`)")
    t.add_argument("--env", default=None, help="environment id (default: the Config's)")
    t.add_argument("--seeds", type=int, default=4, help="number of seeds, run as one vmap")
    t.add_argument("--seed-offset", type=int, default=0, help="first seed")
    t.add_argument(
        "--total-steps", default=None, help="environment steps per seed (100000, 100_000 or 1e5)"
    )
    t.add_argument("--out", type=Path, default=None, help="run directory")
    t.add_argument("--set", action="append", metavar="FIELD=VALUE", help="any Config field")
    t.add_argument("--sweep", action="append", metavar="FIELD=V1,V2", help="grid over a field")
    t.add_argument("--resume", type=Path, default=None, help="continue the run in DIR")
    t.add_argument("--chunk", type=int, default=None, help="updates per chunk")
    t.add_argument("--keep", type=int, default=3, help="checkpoints kept")
    t.add_argument("--no-checkpoint", action="store_true", help="do not save checkpoints")
    t.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events")
    t.add_argument("--eval-every", type=int, default=None, metavar="K",
                   help="evaluate the deterministic policy every K updates")  # fmt: skip
    t.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    t.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first (multi-host: same command on every host)",
    )
    t.add_argument(
        "--devices",
        type=int,
        default=None,
        help="host (CPU) devices for XLA (default: one per core, unless XLA_FLAGS is set)",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    lm = sub.add_parser("llm", help="language-model stages: sft, rm, dpo, grpo, rlhf; generate")
    lm.add_argument(
        "stage", help="sft, rm, dpo, grpo or rlhf; generate; export RUN; data (toy task as JSONL)"
    )
    lm.add_argument("run", nargs="?", type=Path, default=None, help="(export) the run directory")
    lm.add_argument("--task", default=None, help="addition, sorting, preference, ...")
    lm.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        default=None,
        help="run directory of the previous stage (the SFT model)",
    )
    lm.add_argument("--reward-model", type=Path, default=None, help="a reward-model run dir")
    lm.add_argument(
        "--data", type=Path, default=None, help="JSONL rows to train on (with --model or --from)"
    )
    lm.add_argument("--eval-data", type=Path, default=None, help="held-out JSONL rows")
    lm.add_argument(
        "--reward", default=None, help="accuracy, format, overlong, module:function, sums "
        "(accuracy+0.1*format) or rm:RUN (a trained reward model)"
    )  # fmt: skip
    lm.add_argument("--lora-rank", type=int, default=None, help="LoRA rank (0: full fine-tuning)")
    lm.add_argument("--max-prompt-len", type=int, default=None, help="tokens; longer: dropped")
    lm.add_argument(
        "--max-completion-len", type=int, default=None, help="tokens; longer: truncated"
    )
    lm.add_argument("--resume", type=Path, default=None, help="continue the run in DIR")
    lm.add_argument("--split", default="train", help="(data) train or heldout")
    lm.add_argument("--n", type=int, default=1000, help="(data) rows to write")
    lm.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="any Config field; model.FIELD for model sizes",
    )
    lm.add_argument("--seed", type=int, default=0)
    lm.add_argument("--out", type=Path, default=None, help="run directory (export, data: output)")
    lm.add_argument("--no-progress", action="store_true")
    if llm_generate:  # jaxrl.llm imports jax: only for `jaxrl llm ...`, so typos answer fast
        from jaxrl.llm.cli_generate import add_arguments as add_generate_arguments

        add_generate_arguments(lm)  # jaxrl llm generate --model DIR --prompt TEXT [--chat] ...
    lm.set_defaults(func=_cmd_llm)

    so = sub.add_parser("solve", help="dynamic programming on a tabular environment")
    so.add_argument("method", help="value-iteration or policy-iteration")
    so.add_argument("--env", default="FrozenLake-4x4", help="a tabular environment")
    so.add_argument("--gamma", type=float, default=None, help="discount (default: the env's)")
    so.add_argument("--tol", type=float, default=1e-6, help="value iteration's tolerance")
    so.add_argument("--out", type=Path, default=None, help="run directory")
    so.set_defaults(func=_cmd_solve)

    ls = sub.add_parser("list", help="list algorithms and environments")
    ls.set_defaults(func=_cmd_list)

    ev = sub.add_parser("eval", help="evaluate a run directory's policies (eval.json, --video)")
    ev.add_argument("run", type=Path, help="run directory (written by `jaxrl train`)")
    ev.add_argument("--episodes", type=int, default=10, help="episodes per run")
    ev.add_argument("--stochastic", action="store_true", help="sample actions (default: mode)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    ev.add_argument("--video", type=Path, default=None, help="record an episode (.gif or .mp4)")
    ev.set_defaults(func=_cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    from_shell = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(llm_generate=argv[:1] == ["llm"])
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 0
        if args.command == "train" and args.algo is None and args.resume is None:
            raise UsageError("jaxrl train: name an algorithm (see `jaxrl list`) or --resume DIR")
        if args.command == "train":
            _precheck_train(args)  # names and counts, before anything imports jax
        if args.command == "train":  # before jax starts: XLA reads its flags once
            from jaxrl.run.devices import use_host_devices

            try:
                # From a shell every core by default; main([...]) from Python leaves the
                # caller's devices alone unless --devices is given.
                args.device_note = use_host_devices(args.devices, every_core=from_shell)
            except ValueError as e:
                raise UsageError(str(e)) from None
        return args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
