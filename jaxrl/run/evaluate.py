"""Evaluation of trained runs: restore a run directory, act, and measure returns.

``evaluate(RUN)`` loads the newest checkpoint of every run (seed × configuration)
in a run directory, runs ``episodes`` episodes per run of the deterministic
policy (argmax for discrete actions, the mean for continuous ones) or of the
stochastic one, all runs in one compiled program, and writes ``eval.json``: per
run and over runs, the mean, the IQM and 95% bootstrap intervals
(:mod:`jaxrl.run.stats`). ``load(RUN)`` returns a :class:`LoadedPolicy` whose
``act(obs)`` needs none of the training state.

The pieces live by topic and are re-exported here: the policies of each agent family
(:mod:`jaxrl.run.policies`), run directories read back and ``load``
(:mod:`jaxrl.run.restore`), the compiled episodes program (:mod:`jaxrl.run.episodes`),
evaluation during training (:mod:`jaxrl.run.training_eval`) and video frames
(:mod:`jaxrl.run.video`); this module holds ``evaluate``, its table and ``jaxrl eval``.

Shapes: ``R`` runs in a run directory, ``E`` evaluation episodes per run, ``N``
observations in a batch, ``*O`` one observation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrl.run.episodes import _cached_evaluator, make_evaluator, run_episodes
from jaxrl.run.policies import Policy, policy_fn, policy_parts
from jaxrl.run.restore import LoadedPolicy, RestoredRun, _env_of, _leading, load, restore_run
from jaxrl.run.training_eval import TrainingEvaluation

__all__ = [
    "LoadedPolicy",
    "Policy",
    "RestoredRun",
    "TrainingEvaluation",
    "cmd_eval",
    "evaluate",
    "load",
    "make_evaluator",
    "policy_fn",
    "policy_parts",
    "restore_run",
    "run_episodes",
]


def evaluate(
    run_dir: str | Path,
    episodes: int = 10,
    deterministic: bool = True,
    seed: int = 0,
    write: bool = True,
    restored: RestoredRun | None = None,
) -> dict:
    """Evaluates every run of a run directory and writes ``eval.json`` there.

    Args:
      run_dir: a directory written by ``jaxrl train`` (config.json + checkpoints/).
      episodes: episodes per run (``E``).
      deterministic: act with the policy's mode (argmax / mean), else sample.
      seed: seed of the evaluation episodes.
      write: write ``RUN/eval.json``.
      restored: a :func:`restore_run` result to reuse.

    Returns:
      The content of eval.json: ``runs`` (per run: seed, configuration, returns, mean, IQM,
      CI) and ``over_runs`` (statistics of the per-run means over runs).
    """
    from jaxrl.run import rundir
    from jaxrl.run.stats import summarize
    from jaxrl.run.writer import RunWriter

    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"--episodes must be an integer >= 1, got {episodes!r}")
    restored = restored or restore_run(run_dir)
    runs, offset = [], 0
    for g, state in enumerate(restored.states):
        n = len(_leading(state))
        seeds = restored.seeds[offset : offset + n]
        evaluate_state = _cached_evaluator(
            restored.algo, restored.group_configs[g], episodes, deterministic, seed
        )
        rets, lens = evaluate_state(state, seeds)
        for r in range(n):
            stats = summarize(rets[r])
            runs.append(
                {
                    "seed": seeds[r],
                    "config": restored.labels[offset + r],
                    "checkpoint_updates": restored.updates_done[g],
                    "returns": [None if not np.isfinite(x) else float(x) for x in rets[r]],
                    "mean_length": float(np.nanmean(lens[r]))
                    if np.isfinite(lens[r]).any()
                    else None,
                    **{k: stats[k] for k in ("mean", "std", "iqm", "iqm_ci95", "mean_ci95")},
                }
            )
        offset += n
    means = [r["mean"] for r in runs if r["mean"] is not None]
    result = {
        "algo": restored.algo,
        "env": _env_of(restored.config),
        "episodes_per_run": episodes,
        "policy": "deterministic" if deterministic else "stochastic",
        "eval_seed": seed,
        "runs": runs,
        "over_runs": summarize(means),
        "over_runs_definition": "statistics over runs of each run's mean evaluation return",
        "machine": rundir.machine_info(),
    }
    if write:
        RunWriter(run_dir, restored.algo, result["env"], [{}], []).write_eval(result)
    return result


def format_table(result: dict) -> str:
    """A text table of an ``evaluate`` result: one row per run, then the aggregate."""
    lines = [
        f"{result['algo']} on {result['env']}: {result['episodes_per_run']} {result['policy']} "
        "episodes per run",
        f"{'seed':>6} {'config':<24} {'mean':>10} {'IQM':>10} {'min':>10} {'max':>10} "
        f"{'length':>8}",
    ]
    for r in result["runs"]:
        rets = np.array([np.nan if x is None else x for x in r["returns"]], float)
        cfg = ", ".join(f"{k}={v}" for k, v in r["config"].items()) or "-"

        def f(v):
            return "-" if v is None or not np.isfinite(v) else f"{v:.2f}"

        lo = np.nanmin(rets) if np.isfinite(rets).any() else None
        hi = np.nanmax(rets) if np.isfinite(rets).any() else None
        ml = r["mean_length"]
        lines.append(
            f"{r['seed']:>6} {cfg[:24]:<24} {f(r['mean']):>10} {f(r['iqm']):>10} {f(lo):>10} "
            f"{f(hi):>10} {'-' if ml is None else f'{ml:.1f}':>8}"
        )
    o = result["over_runs"]
    if o["n"]:
        ci = o["iqm_ci95"]
        lines.append(
            f"over {o['n']} runs: IQM {o['iqm']:.2f} (95% CI {ci[0]:.2f} to {ci[1]:.2f}), "
            f"mean {o['mean']:.2f} ± {o['std']:.2f}"
        )
    else:
        lines.append("no evaluation episode finished")
    return "\n".join(lines)


def cmd_eval(args) -> int:
    """``jaxrl eval``: evaluates, writes RUN/eval.json, prints a table (and a video)."""
    from jaxrl.cli import UsageError

    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    if args.video is not None and args.video.suffix.lower() not in (".gif", ".mp4"):
        raise UsageError(f"--video {args.video}: the name must end in .gif or .mp4")
    try:
        restored = restore_run(args.run)
        result = evaluate(args.run, args.episodes, not args.stochastic, args.seed, True, restored)
        print(format_table(result))
        print(f"wrote {Path(args.run) / 'eval.json'}")
        if args.video is not None:
            from jaxrl.run.video import record_video

            rec = record_video(restored, args.video, not args.stochastic, args.seed)
            print(f"wrote {rec.path} ({rec.frames} frames)")
    except ValueError as e:
        raise UsageError(str(e).splitlines()[0]) from None
    return 0
