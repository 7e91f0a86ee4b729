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
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jaxrl

__all__ = ["main"]

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in what the user asked for: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; we want one line
        raise UsageError(f"{self.prog}: {message}")


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set expects field=value, got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = value.strip()
    return out


# Names known without importing jax (which takes seconds): a typo is answered at once.
# tests/test_cli.py checks them against the live registries (jaxrl.agents, jaxrl.envs,
# jaxrl.tabular); a name missing here but present there still works (see _known_algorithm).
DEEP_ALGORITHMS = ("a2c", "ddpg", "dqn", "ppo", "pqn", "reinforce", "sac", "td3", "trpo")
TABULAR_ALGORITHMS = ("q-learning", "sarsa", "expected-sarsa", "double-q", "n-step-sarsa")
SOLVE_METHODS = ("value-iteration", "policy-iteration")
TABULAR_ENVS = (
    "CliffWalking",
    "FrozenLake-4x4",
    "FrozenLake-4x4-nonslippery",
    "FrozenLake-8x8",
    "FrozenLake-8x8-nonslippery",
    "MaximizationBias",
    "RandomMDP",
    "WindyGridworld",
)
ENVS = (
    *("Acrobot-v1", "CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"),
    *(f"{g}-MinAtar" for g in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")),
    *(
        f"{e}-bsuite"
        for e in (
            "Catch",
            "DeepSea",
            "DiscountingChain",
            "MNISTBandit",
            "MemoryChain",
            "SimpleBandit",
            "UmbrellaChain",
        )
    ),
    *(
        f"{e}-misc"
        for e in (
            "BernoulliBandit",
            "FourRooms",
            "FrozenLake",
            "GaussianBandit",
            "MetaMaze",
            "PointRobot",
            "Pong",
            "Reacher",
            "Swimmer",
        )
    ),
    *(f"Probe{i}{c}-v0" for i in (1, 2, 3, 4, 5, "Truncation") for c in ("", "Continuous")),
)


def _suggest(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, ignoring case, or ``""``."""
    import difflib

    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def _known_algorithm(name: str) -> bool:
    """A deep-RL algorithm name, checked without importing jax.

    A name missing from ``DEEP_ALGORITHMS`` whose module file exists (an algorithm
    added since) is left to the live registry."""
    if name in DEEP_ALGORITHMS:
        return True
    module = Path(__file__).parent / "agents" / f"{name}.py"
    internal = ("base", "on_policy", "off_policy")
    return name.isidentifier() and name not in internal and module.exists()


def _parse_count(flag: str, text: str) -> int:
    """A whole number >= 1 written as ``100000``, ``100_000`` or ``1e5``."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        value = float("nan")
    if not (value >= 1 and value.is_integer() and value < 2**62):
        raise UsageError(f"{flag} must be a whole number >= 1 (e.g. 100000 or 1e5), got {text!r}")
    return int(text.replace("_", "")) if text.replace("_", "").isdigit() else int(value)


def _precheck_train(args) -> None:
    """Checks what ``jaxrl train`` can check without importing jax: names and counts."""
    for flag, value in (("--seeds", args.seeds), ("--chunk", args.chunk), ("--keep", args.keep)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if args.total_steps is not None:
        args.total_steps = _parse_count("--total-steps", args.total_steps)
    if args.resume is not None:
        if not args.resume.is_dir():
            raise UsageError(f"--resume {args.resume}: no such directory")
        if not (args.resume / "config.json").exists():
            raise UsageError(f"--resume {args.resume}: no config.json there (not a run directory)")
        return
    algo = args.algo
    tabular = algo in TABULAR_ALGORITHMS
    if not tabular and not _known_algorithm(algo):
        known = (*DEEP_ALGORITHMS, *TABULAR_ALGORITHMS)
        raise UsageError(
            f"unknown algorithm {algo!r}{_suggest(algo, known)}; known: {', '.join(known)}"
        )
    if tabular and args.total_steps is not None:
        raise UsageError("--total-steps: this algorithm counts episodes; use --set num_episodes=N")
    env = args.env
    for item in args.set or []:
        name, _, value = item.partition("=")
        if name.strip() in ("env_id", "env") and value.strip():
            env = value.strip()
    if env is None or ":" in env:  # gymnasium:ID, brax:NAME: the live registry decides
        return
    if tabular and env not in TABULAR_ENVS:
        if env in ENVS:
            raise UsageError(
                f"{env} is not a tabular environment: {algo} runs on {', '.join(TABULAR_ENVS)}; "
                f"for {env} use {', '.join(DEEP_ALGORITHMS)}"
            )
        raise UsageError(
            f"unknown tabular environment {env!r}{_suggest(env, TABULAR_ENVS)}; "
            f"known: {', '.join(TABULAR_ENVS)}"
        )
    if not tabular and env not in ENVS:
        if env in TABULAR_ENVS:
            raise UsageError(
                f"{env} is a tabular environment: use {', '.join(TABULAR_ALGORITHMS)} "
                f"(or jaxrl solve value-iteration --env {env})"
            )
        raise UsageError(
            f"unknown environment {env!r}{_suggest(env, ENVS)}; known: {', '.join(ENVS)}"
        )


def _check_out(out: Path, algo: str, config, seeds: list[int], grid: dict) -> None:
    """An existing run directory must hold this run; else name only the fields that differ."""
    import json

    from jaxrl._config import config_to_dict

    path = Path(out) / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    new = json.loads(json.dumps({"algo": algo, "seeds": seeds, "grid": grid}))
    new_config = json.loads(json.dumps(config_to_dict(config)))
    old_config = old.get("config") or {}
    diffs = [f"{k} ({old.get(k)!r} there, {new[k]!r} now)" for k in new if new[k] != old.get(k)]
    diffs += [
        f"{k} ({old_config.get(k)!r} there, {new_config.get(k)!r} now)"
        for k in sorted(set(old_config) | set(new_config))
        if old_config.get(k) != new_config.get(k)
    ]
    if diffs:
        raise UsageError(
            f"{out} holds a different run: {'; '.join(diffs)}; choose another --out "
            f"or continue that run with: jaxrl train --resume {out}"
        )


def _note_rounding(module, config, requested: int | None) -> None:
    """Says when --total-steps is not a whole number of updates (a run takes whole updates)."""
    if requested is None or not hasattr(module, "make_agent"):
        return
    agent = module.make_agent(config)
    done = agent.num_updates * agent.steps_per_update
    if done != requested:
        print(
            f"note: --total-steps {requested:,} is not a multiple of the "
            f"{agent.steps_per_update:,} environment steps of one update, so each run takes "
            f"{agent.num_updates:,} updates = {done:,} steps"
        )


def _quick() -> bool:
    """``JAXRL_QUICK=1``: tiny budgets, so that tests/test_docs.py can run every documented
    command as written (the README's, the examples')."""
    import os

    return os.environ.get("JAXRL_QUICK") == "1"


def _quick_train(module, config, seeds: list[int]):
    """At most 2 seeds and 2 updates (20 episodes for tabular agents); learning starts in
    the first update."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    if "num_episodes" in names:
        changes["num_episodes"] = min(config.num_episodes, 20)
    if "total_timesteps" in names:
        agent = module.make_agent(config)
        changes["total_timesteps"] = min(config.total_timesteps, 2 * agent.steps_per_update)
        if "learning_starts" in names:
            changes["learning_starts"] = min(config.learning_starts, agent.steps_per_update // 2)
    print(f"JAXRL_QUICK=1: {', '.join(f'{k}={v}' for k, v in changes.items())}, <= 2 seeds")
    return dataclasses.replace(config, **changes), seeds[:2]


def _env_field(cls) -> str:
    """The Config field naming the environment: ``env_id`` (deep RL) or ``env`` (tabular)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    return "env_id" if "env_id" in names else "env"


def _check_env(env_id: str, field: str) -> None:
    if field == "env_id" and env_id.startswith(("gymnasium:", "brax:")):
        return  # jaxrl.envs.make checks these (registered id, installed extra)
    if field == "env":
        from jaxrl.tabular import TABULAR_ENVS

        known = sorted(TABULAR_ENVS)
    else:
        from jaxrl import envs

        known = envs.registered_envs()
    if env_id not in known:
        hint = _suggest(env_id, known)
        raise UsageError(f"unknown environment {env_id!r}{hint}; known: {', '.join(known)}")


def _build_config(module, args) -> object:
    import dataclasses

    from jaxrl._config import config_from_overrides, parse_value

    overrides = _parse_sets(args.set or [])
    field = _env_field(module.Config)
    if args.env is not None:
        overrides[field] = args.env
    if args.total_steps is not None:
        if "total_timesteps" not in {f.name for f in dataclasses.fields(module.Config)}:
            raise UsageError(
                "--total-steps: this algorithm counts episodes; use --set num_episodes=N"
            )
        overrides["total_timesteps"] = str(args.total_steps)
    if field in overrides:
        _check_env(parse_value(module.Config, field, overrides[field]), field)
    return config_from_overrides(module.Config, overrides)


def _parse_sweeps(module, items: list[str]) -> dict[str, list]:
    from jaxrl._config import parse_value

    grid = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--sweep expects field=v1,v2,..., got {item!r}")
        name, values = item.split("=", 1)
        name = name.strip()
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not parts:
            raise UsageError(f"--sweep {name}= names no values")
        grid[name] = [parse_value(module.Config, name, v) for v in parts]
    return grid


def _from_run_dir(run_dir: Path):
    """algo, module, config, seeds and grid recorded in a run directory's config.json."""
    import json
    import typing

    from jaxrl._config import config_from_overrides
    from jaxrl.agents import get_algorithm

    path = run_dir / "config.json"
    if not Path(run_dir).is_dir():
        raise UsageError(f"--resume {run_dir}: no such directory")
    if not path.exists():
        raise UsageError(f"--resume {run_dir}: no config.json there (not a run directory)")
    record = json.loads(path.read_text())
    module = get_algorithm(record["algo"])
    hints = typing.get_type_hints(module.Config)
    values = {
        k: tuple(v) if isinstance(v, list) and typing.get_origin(hints.get(k)) is tuple else v
        for k, v in record["config"].items()
    }
    config = config_from_overrides(module.Config, values)
    return record["algo"], module, config, record["seeds"], record.get("grid") or {}


def _cmd_train(args) -> int:
    from jaxrl.agents import get_algorithm
    from jaxrl.run import NonFiniteError, sweep

    if args.distributed:
        from jaxrl.run.devices import initialize_distributed

        try:
            print(f"distributed: {initialize_distributed()}")
        except ValueError as e:
            raise UsageError(str(e)) from None
    try:
        if args.resume is not None:
            algo, module, config, seeds, grid = _from_run_dir(args.resume)
            out = args.resume
        else:
            algo = args.algo
            module = get_algorithm(algo)
            config = _build_config(module, args)
            grid = _parse_sweeps(module, args.sweep or [])
            if args.seeds < 1:
                raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
            seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
            env_name = getattr(config, _env_field(type(config)))
            out = args.out or Path("runs") / (f"{algo}-{env_name}-{time.strftime('%Y%m%d-%H%M%S')}")
            if _quick():
                config, seeds = _quick_train(module, config, seeds)
            _check_out(out, algo, config, seeds, grid)
            if not _quick():
                _note_rounding(module, config, args.total_steps)
        from jaxrl.run.devices import device_summary

        print(f"devices: {device_summary()} ({getattr(args, 'device_note', '')})")
        result = sweep(
            module,
            config,
            grid,
            seeds,
            out,
            algo=algo,
            progress=not args.no_progress,
            chunk_updates=args.chunk,
            checkpoint=not args.no_checkpoint,
            keep=args.keep,
            tensorboard=args.tensorboard,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes,
        )
    except NonFiniteError as e:
        raise UsageError(f"{e} ({out}/metrics.csv)") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    except KeyboardInterrupt as e:  # run_seeds raises RunInterrupted with what it wrote
        done = getattr(e, "updates_done", 0)
        saved = f"stopped after update {done}; metrics so far in {out}" if done else "stopped"
        print(f"{saved}; continue with: jaxrl train --resume {out}", file=sys.stderr)
        return 130
    _print_summary(result.summary, out)
    return 0


def _print_summary(summary: dict, out) -> None:
    def line(fr):
        if not fr["n"]:
            return "no episode finished"
        ci = fr["iqm_ci95"]
        return (
            f"IQM {fr['iqm']:.1f} (95% CI {ci[0]:.1f} to {ci[1]:.1f}), "
            f"mean {fr['mean']:.1f} ± {fr['std']:.1f} over {fr['n']} seeds"
        )

    if "configurations" in summary:
        for c in summary["configurations"]:
            vals = ", ".join(f"{k}={v}" for k, v in c["values"].items())
            print(f"{vals:>40}: final return {line(c['final_return'])}")
    else:
        print(f"final return: {line(summary['final_return'])}")
    t = summary["timing"]
    print(
        f"compile {t['compile_s']:.1f} s, run {t['run_s']:.1f} s "
        f"({t['steps_per_s']:,.0f} env steps/s over all runs); run directory: {out}"
    )


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
    from jaxrl.run import rundir
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
        rundir.write_solution(out, solution, args.tol)
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
