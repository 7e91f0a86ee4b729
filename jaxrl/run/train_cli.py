"""``jaxrl train``: the Config from the command line, a sweep over seeds, the summary.

``jaxrl train ALGO [--env ENV_ID] [--seeds N] [--total-steps N] [--set k=v ...]
[--sweep k=v1,v2 ...] [--out DIR]`` or ``jaxrl train --resume DIR``. Names and counts
were checked before jax was imported (:mod:`jaxrl.cli_checks`); a mistake found here is
a :class:`jaxrl.cli.UsageError` too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from jaxrl.cli_checks import UsageError, _check_env, _parse_sets, _quick

__all__ = ["cmd_train"]


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


QUICK_OFF_POLICY_STEPS = 256  # most environment steps of one off-policy update under QUICK


def _quick_train(module, config, seeds: list[int]):
    """At most 2 seeds and 2 updates (20 episodes for tabular agents); learning starts in
    the first update; an off-policy update takes at most ``QUICK_OFF_POLICY_STEPS`` steps
    (a multiple of ``num_envs * train_frequency``)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    if "num_episodes" in names:
        changes["num_episodes"] = min(config.num_episodes, 20)
    if "steps_per_update" in names:
        per_iteration = config.num_envs * config.train_frequency
        most = max(per_iteration, QUICK_OFF_POLICY_STEPS // per_iteration * per_iteration)
        if config.steps_per_update > most:
            changes["steps_per_update"] = most
            config = dataclasses.replace(config, steps_per_update=most)
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
    from jaxrl.run.restore import read_record

    record, module, config = read_record(run_dir)  # ValueError: not a run directory
    return record["algo"], module, config, record["seeds"], record.get("grid") or {}


def cmd_train(args) -> int:
    """``jaxrl train``: the Config from the flags (or from ``--resume DIR``), the sweep, the
    summary. Returns the exit status: 0, or 130 when stopped by Ctrl-C."""
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
    print(_devices_line(result.summary.get("devices"), getattr(args, "device_note", "")))
    _print_summary(result.summary, out)
    return 0


def _devices_line(devices: dict | None, note: str) -> str:
    """``devices: 2 of 4 cpu devices used (…)``: summary.json's ``devices.used`` of
    ``devices.available``; the available ones alone for a summary written before it had both."""
    from jaxrl.run.devices import device_summary

    note = f"; {note}" if note else ""
    if not devices or "used" not in devices:
        return f"devices: {device_summary()} available{note}"
    n, kind = devices["available"], devices["kind"]
    hosts = devices.get("processes", 1)
    where = f" over {hosts} processes" if hosts > 1 else ""
    plural = "s" if n != 1 else ""
    return f"devices: {devices['used']} of {n} {kind} device{plural}{where} used{note}"


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
