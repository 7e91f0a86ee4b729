"""The ``jaxrl`` command.

    jaxrl train ALGO [--env ENV_ID] [--seeds N] [--total-steps N] [--out DIR] [--set k=v ...]
    jaxrl list

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


def _build_config(module, args) -> object:
    from jaxrl._config import config_from_overrides, parse_value

    overrides = _parse_sets(args.set or [])
    if args.env is not None:
        overrides["env_id"] = args.env
    if args.total_steps is not None:
        overrides["total_timesteps"] = str(args.total_steps)
    if "env_id" in overrides:
        from jaxrl import envs

        env_id = parse_value(module.Config, "env_id", overrides["env_id"])
        known = envs.registered_envs()
        if env_id not in known:
            import difflib

            close = difflib.get_close_matches(env_id, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown environment {env_id!r}{hint}; known: {', '.join(known)}")
    return config_from_overrides(module.Config, overrides)


def _cmd_train(args) -> int:
    from jaxrl.agents import get_algorithm

    try:
        module = get_algorithm(args.algo)
        config = _build_config(module, args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    out = args.out or Path("runs") / (
        f"{args.algo}-{getattr(config, 'env_id', 'env')}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    from jaxrl.run import train

    result, summary = train(
        module,
        config,
        list(range(args.seed_offset, args.seed_offset + args.seeds)),
        out,
        algo=args.algo,
        progress=not args.no_progress,
        chunk_updates=args.chunk,
    )
    fr = summary["final_return"]
    t = summary["timing"]
    if fr["n"]:
        ci = fr["iqm_ci95"]
        print(
            f"final return over {fr['n']} seeds: IQM {fr['iqm']:.1f} (95% CI {ci[0]:.1f} to "
            f"{ci[1]:.1f}), mean {fr['mean']:.1f} ± {fr['std']:.1f}"
        )
    print(
        f"compile {t['compile_s']:.1f} s, run {t['run_s']:.1f} s "
        f"({t['steps_per_s']:,.0f} env steps/s over all seeds); run directory: {out}"
    )
    return 0


def _cmd_list(args) -> int:
    from jaxrl import envs
    from jaxrl.agents import ALGORITHMS

    print("algorithms:", ", ".join(sorted(ALGORITHMS)))
    print("environments:", ", ".join(envs.registered_envs()))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jaxrl", description="Reinforcement learning as pure JAX functions.")
    p.add_argument("--version", action="version", version=f"jaxrl {jaxrl.__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train an algorithm over several seeds in one program")
    t.add_argument("algo", help="algorithm name (see `jaxrl list`)")
    t.add_argument("--env", default=None, help="environment id (default: the Config's)")
    t.add_argument("--seeds", type=int, default=4, help="number of seeds, run as one vmap")
    t.add_argument("--seed-offset", type=int, default=0, help="first seed")
    t.add_argument("--total-steps", type=int, default=None, help="environment steps per seed")
    t.add_argument("--out", type=Path, default=None, help="run directory")
    t.add_argument("--set", action="append", metavar="FIELD=VALUE", help="any Config field")
    t.add_argument("--chunk", type=int, default=None, help="updates per chunk")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    ls = sub.add_parser("list", help="list algorithms and environments")
    ls.set_defaults(func=_cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 0
        return args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
