"""The ``sweep`` suite: many PPO agents in one compiled program, and checkpoint overhead.

Rows (each measured in a fresh process):

* ``agents``: N PPO CartPole-v1 agents (N = 1, 8, 32, 128) trained by
  :func:`jaxrl.run.run_seeds`, the program behind ``jaxrl train ppo --seeds ...
  --sweep learning_rate=...``: half the agents at learning rate 2.5e-4 and half at
  1e-3 (a swept traced field, ``config_axis=0``), one seed each, all in one vmapped
  program run in chunks. Once on the machine's one CPU device, once with 4 host
  devices forced through ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the
  run axis sharded across them). The 4 devices share the machine's cores, but each
  runs its shard on its own thread, whereas one device runs the program mostly on one
  core: on a multi-core CPU forced devices are a way to use every core.
* ``checkpoint``: ``jaxrl train ppo``'s defaults (4 seeds, 500k steps, about 20
  chunks), with an orbax checkpoint saved after every chunk and without.

Compile time and run time are measured apart; time per agent = run s / N.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from typing import Any

from benchmarks.harness.common import REPO_DIR, select_names

__all__ = ["AGENTS", "DEVICES", "measure_agents", "measure_checkpoint", "run_suite"]

AGENTS = (1, 8, 32, 128)
DEVICES = (1, 4)
STEPS = 100_000  # per agent (PPO CartPole defaults otherwise: 4 envs × 128 steps)
QUICK_AGENTS = (1, 4)
QUICK_STEPS = 8_192
LEARNING_RATES = (2.5e-4, 1e-3)


def _ppo_config(steps: int):
    from jaxrl.agents import ppo

    return ppo.Config(env_id="CartPole-v1", total_timesteps=steps)


def measure_agents(agents: int, steps: int) -> dict[str, Any]:
    """``agents`` PPO agents (two learning rates) in one :func:`jaxrl.run.run_seeds` program."""
    import dataclasses

    import jax
    import numpy as np

    from jaxrl.agents import ppo
    from jaxrl.run import run_seeds, stack_configs

    base = _ppo_config(steps)
    configs = [
        dataclasses.replace(base, learning_rate=LEARNING_RATES[i % len(LEARNING_RATES)])
        for i in range(agents)
    ]
    result = run_seeds(ppo.make_agent(base), stack_configs(configs), list(range(agents)),
                       config_axis=0)  # fmt: skip
    ret = result.metrics["episode_return"]
    tail = ret[:, -max(1, ret.shape[1] // 20) :]
    return {
        "devices": jax.device_count(),
        "compile_s": result.compile_s,
        "run_s": result.run_s,
        "final_return_mean": float(np.nanmean(tail)),
    }


def measure_checkpoint(steps: int, repeats: int) -> dict[str, Any]:
    """``jaxrl train ppo``'s defaults (4 seeds) without and with a checkpoint per chunk.

    The two alternate ``repeats`` times in this one process (run times vary by a few
    percent from one call to the next on a 2-core machine); the medians are compared.
    """
    import statistics

    from jaxrl.agents import ppo
    from jaxrl.run import run_seeds
    from jaxrl.run.checkpoint import Checkpointer

    cfg = _ppo_config(steps)
    agent = ppo.make_agent(cfg)
    runs: dict[str, list[float]] = {"off": [], "on": []}
    compile_s = []
    for _ in range(repeats):
        for mode in ("off", "on"):
            with tempfile.TemporaryDirectory() as tmp:
                ckpt = Checkpointer(os.path.join(tmp, "checkpoints")) if mode == "on" else None
                result = run_seeds(agent, cfg, [0, 1, 2, 3], checkpointer=ckpt)
            runs[mode].append(result.run_s)
            compile_s.append(result.compile_s)
    chunk = max(1, math.ceil(agent.num_updates / 20))  # run_seeds' default chunk
    return {
        "compile_s": statistics.median(compile_s),
        "run_s_off": statistics.median(runs["off"]),
        "run_s_on": statistics.median(runs["on"]),
        "runs_off": runs["off"],
        "runs_on": runs["on"],
        "chunks": math.ceil(agent.num_updates / chunk),
    }


def _child(payload: dict[str, Any]) -> dict[str, Any]:
    if payload["measure"] == "agents":
        return measure_agents(payload["agents"], payload["steps"])
    return measure_checkpoint(payload["steps"], payload["repeats"])


def _subprocess(payload: dict[str, Any], devices: int = 1) -> dict[str, Any]:
    env = dict(os.environ)
    if devices > 1:
        flag = f"--xla_force_host_platform_device_count={devices}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
    cmd = [sys.executable, "-m", "benchmarks.harness.sweep", json.dumps(payload)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_DIR, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"sweep measurement {payload} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_suite(
    quick: bool, names: list[str] | None = None, log=print, on_row=None
) -> tuple[list[dict], dict[str, Any]]:
    """Runs the agents rows (1 and 4 devices) and the checkpoint rows."""
    from benchmarks.harness.common import row_provenance

    agent_counts = QUICK_AGENTS if quick else AGENTS
    steps = QUICK_STEPS if quick else STEPS
    ckpt_steps = QUICK_STEPS if quick else _ppo_config(500_000).total_timesteps
    plan: list[tuple[str, dict[str, Any], int]] = []
    for devices in DEVICES:
        for n in agent_counts:
            payload = {"measure": "agents", "agents": n, "steps": steps}
            plan.append((f"agents/devices={devices}/n={n}", payload, devices))
    payload = {"measure": "checkpoint", "steps": ckpt_steps, "repeats": 1 if quick else 3}
    plan.append(("checkpoint", payload, 1))
    chosen = set(select_names([p[0] for p in plan], names))
    rows: list[dict] = []
    settings = {
        "settings": {
            "agents": {"env_id": "CartPole-v1", "algo": "ppo", "total_timesteps": steps,
                       "learning_rates": list(LEARNING_RATES), "num_envs": 4, "num_steps": 128},
            "checkpoint": {"env_id": "CartPole-v1", "algo": "ppo", "seeds": 4,
                           "total_timesteps": ckpt_steps},
        }
    }  # fmt: skip
    for name, payload, devices in plan:
        if name not in chosen:
            continue
        res = _subprocess(payload, devices)
        row = {"name": name, "kind": payload["measure"], **payload, **res,
               "provenance": row_provenance()}  # fmt: skip
        if payload["measure"] == "agents":
            row["requested_devices"] = devices
            row["run_s_per_agent"] = res["run_s"] / payload["agents"]
            row["steps_per_s"] = payload["agents"] * payload["steps"] / res["run_s"]
        rows.append(row)
        if on_row is not None:
            on_row(row, settings)
        log(f"[sweep] {name}: {json.dumps(res)}")
    return rows, settings


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))


def _f(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def checkpoint_overhead(data: dict) -> float | None:
    """Median run time with a checkpoint per chunk over that without, minus 1 (None if absent)."""
    row = next((r for r in data["rows"] if r["name"] == "checkpoint"), None)
    return None if row is None else row["run_s_on"] / row["run_s_off"] - 1.0


def sweep_md(data: dict, figures_rel) -> list[str]:
    """The report section: the agents table per device count and the checkpoint overhead."""
    del figures_rel
    agents = [r for r in data["rows"] if r["kind"] == "agents"]
    lines = [
        "PPO CartPole-v1 agents (default PPO settings, 4 envs × 128 steps; half at learning "
        "rate 2.5e-4, half at 1e-3) trained by `jaxrl.run.run_seeds` in one vmapped program "
        '(about 20 chunks), each row in a fresh process. "4 devices": 4 host devices forced '
        "with `XLA_FLAGS=--xla_force_host_platform_device_count=4`, the run axis sharded "
        "across them (padded to a multiple of 4); they share the machine's cores, each "
        "device's shard running on its own thread.",
        "",
        "| devices | agents | env steps per agent | compile s | run s | run s per agent "
        "| steps/s (all agents) | per-agent time vs 1 agent |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = {r["devices"]: r["run_s_per_agent"] for r in agents if r["agents"] == 1}
    for r in sorted(agents, key=lambda r: (r["devices"], r["agents"])):
        rel = r["run_s_per_agent"] / base[r["devices"]] if r["devices"] in base else None
        lines.append(
            f"| {r['devices']} | {r['agents']} | {r['steps']:,} | {_f(r['compile_s'], 1)} "
            f"| {_f(r['run_s'])} | {_f(r['run_s_per_agent'], 3)} | {_f(r['steps_per_s'], 0)} "
            f"| {_f(rel)} |"
        )
    overhead = checkpoint_overhead(data)
    if overhead is not None:
        r = next(r for r in data["rows"] if r["name"] == "checkpoint")
        ok = "✓" if overhead <= 0.05 else "✗"
        pairs = zip(r["runs_off"], r["runs_on"], strict=True)
        each = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in pairs)
        lines += [
            "",
            f"Checkpoint overhead (`jaxrl train ppo` defaults: 4 seeds, {r['steps']:,} steps, "
            f"{r['chunks']} chunks, an orbax checkpoint after each; without and with "
            f"alternating {len(r['runs_off'])} times in one process, run s without/with: "
            f"{each}): median run {_f(r['run_s_off'])} s without, {_f(r['run_s_on'])} s "
            f"with: {overhead:+.1%} ({ok} target ≤ 5%).",
        ]
    return lines


def readme_lines(data: dict) -> list[str]:
    """One line for the README's results section."""
    agents = {(r["devices"], r["agents"]): r for r in data["rows"] if r["kind"] == "agents"}
    parts = [
        f"{n} agent{'s' if n > 1 else ''} {agents[(1, n)]['run_s_per_agent']:.3f} s each"
        for n in sorted(n for d, n in agents if d == 1)
    ]
    text = "PPO CartPole agents in one program (run time per agent, 1 CPU device): "
    text += "; ".join(parts) + "."
    overhead = checkpoint_overhead(data)
    if overhead is not None:
        text += f" Checkpoint after every chunk: {overhead:+.1%} run time."
    return [text, ""]
