"""Speed of the off-policy agents at rejax's default settings, compile and run timed apart.

Runs (``--runs``):

* ``dqn``: Double DQN on CartPole-v1, rejax 0.1.3's DQN defaults: 1 environment,
  replay 131072, batch 256, 2048 warm-up steps, one gradient step per environment
  step, Polyak target update (τ = 0.01) every step, MLP 64-64 with SiLU (swish),
  Adam 3e-4, no gradient clipping, ε 1 → 0.05 over 10% of the run; 100k steps.
* ``sac``: SAC on Pendulum-v1, rejax's SAC defaults: 1 environment, replay 131072,
  batch 256, 2048 warm-up steps, one gradient step per step, τ = 0.01, MLP 64-64
  ReLU, Adam 3e-4 for actor, critics and temperature, target entropy −|A|; 20k steps.
* ``dqn-collect``, ``sac-collect``: the same with learning switched off (learning_starts
  beyond the run), i.e. acting, environment steps and replay inserts only. The
  difference to the full run is the cost of sampling and learning.
* ``dqn-sample``: DQN's loop drawing its replay samples but not learning from them;
  ``dqn-relu``, ``dqn-single``: DQN with ReLU instead of SiLU, with plain instead of
  Double DQN (one forward pass fewer): where the learning step's time goes.

For each run the script lowers and compiles ``train`` (the compile time), then calls
the compiled program ``--repeats`` times with fresh keys and reports the median
(the run time, steps/s = total steps / run time). ``--seeds N`` vmaps N seeds.

Run: ``python benchmarks/offpolicy_speed.py`` (a few minutes on 2 CPU cores);
``--runs dqn --steps 20000`` for a quick look. ``--save`` stores the rows under the key
``dqn_profile`` of benchmarks/results/speed.json, which the speed section of RESULTS.md
shows as where DQN's run time goes. On a machine shared with other jobs
the wall-clock numbers are noisy: the process CPU time is printed as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import jax

from jaxrl import buffers
from jaxrl.agents import dqn, off_policy, sac
from jaxrl.agents.base import make_train_fn

SPEED_JSON = Path(__file__).resolve().parent / "results" / "speed.json"

DQN_REJAX = dqn.Config(
    env_id="CartPole-v1",
    total_timesteps=100_000,
    num_envs=1,
    buffer_size=131_072,
    batch_size=256,
    train_frequency=1,
    gradient_steps=1,
    steps_per_update=1_000,
    hidden_sizes=(64, 64),
    activation="silu",
    double=True,
    target_update_interval=1,
    tau=0.01,
    learning_starts=2_048,
    learning_rate=3e-4,
    max_grad_norm=math.inf,
    eps_start=1.0,
    eps_end=0.05,
    exploration_fraction=0.1,
    gamma=0.99,
)

SAC_REJAX = sac.Config(
    env_id="Pendulum-v1",
    total_timesteps=20_000,
    num_envs=1,
    buffer_size=131_072,
    batch_size=256,
    train_frequency=1,
    gradient_steps=1,
    steps_per_update=1_000,
    hidden_sizes=(64, 64),
    activation="relu",
    learning_starts=2_048,
    actor_lr=3e-4,
    critic_lr=3e-4,
    alpha_lr=3e-4,
    tau=0.01,
    gamma=0.99,
)

RUNS = {
    "dqn": (dqn, DQN_REJAX, {}),
    "dqn-collect": (dqn, DQN_REJAX, {"learning_starts": 10**9}),
    "sac": (sac, SAC_REJAX, {}),
    "sac-collect": (sac, SAC_REJAX, {"learning_starts": 10**9}),
    # Where DQN's time goes (--runs dqn-sample dqn-relu dqn-single):
    "dqn-sample": (dqn, DQN_REJAX, {"sample_only": True}),
    "dqn-relu": (dqn, DQN_REJAX, {"activation": "relu"}),
    "dqn-single": (dqn, DQN_REJAX, {"double": False}),
}


def _sample_only(learner, sample, key, grad_steps, cfg):
    """A learning step that only draws the sample (profiling: replay cost without learning)."""
    del key, grad_steps, cfg
    t = sample.transitions
    touched = t.obs.sum() + t.next_obs.sum() + t.reward.sum() + t.action.sum()
    return off_policy.LearnOutput(learner, {"sampled": touched}, None)


def sample_only_train(cfg):
    """DQN's loop with the learning step replaced by :func:`_sample_only`."""
    agent = dqn.make_agent(cfg)
    env, env_params, action_info = off_policy.make_env(cfg.env_id, cfg.num_envs)
    network = dqn.make_network(cfg, action_info)
    update = off_policy.make_update(
        env=env,
        env_params=env_params,
        action_info=action_info,
        buffer=buffers.make_replay_buffer(cfg.buffer_size, cfg.num_envs, cfg.batch_size),
        act_fn=functools.partial(dqn._act, apply_fn=network.apply),
        learn_fn=_sample_only,
        loop=off_policy.make_loop(cfg),
    )
    return make_train_fn(agent._replace(update=update), cfg)


def measure(module, cfg, seeds: int, repeats: int, sample_only: bool = False) -> dict:
    """Compile seconds, median run seconds and CPU seconds of ``train`` for ``cfg``."""
    train = sample_only_train(cfg) if sample_only else module.make_train(cfg)
    if seeds > 1:
        train = jax.vmap(train)
        keys = [jax.random.split(jax.random.PRNGKey(i), seeds) for i in range(repeats)]
    else:
        keys = [jax.random.PRNGKey(i) for i in range(repeats)]
    start = time.perf_counter()
    compiled = jax.jit(train).lower(keys[0]).compile()
    compile_s = time.perf_counter() - start
    walls, cpus, returns = [], [], []
    for key in keys:
        wall, cpu = time.perf_counter(), time.process_time()
        _, metrics = compiled(key)
        jax.block_until_ready(metrics)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        returns.append(float(jax.numpy.nanmean(metrics["episode_return"][..., -5:])))
    run_s = statistics.median(walls)
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "cpu_s": statistics.median(cpus),
        "steps_per_s": cfg.total_timesteps * seeds / run_s,
        "final_return": statistics.median(returns),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--steps", type=int, default=None, help="override total_timesteps")
    parser.add_argument("--seeds", type=int, default=1, help="seeds under one vmap")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--save", type=Path, nargs="?", const=SPEED_JSON, default=None,
        help=f"store the rows as 'dqn_profile' in this suite file (default {SPEED_JSON.name})",
    )  # fmt: skip
    args = parser.parse_args()
    rows, loads = [], [os.getloadavg()[0]]

    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs (affinity {len(os.sched_getaffinity(0))}), "
        f"jax {jax.__version__}, devices {jax.devices()}"
    )
    header = f"{'run':12s} {'steps':>7s} {'seeds':>5s} {'compile s':>9s} {'run s':>7s}"
    print(header + f" {'cpu s':>7s} {'steps/s':>9s} {'return':>8s}")
    for name in args.runs:
        module, base, changes = RUNS[name]
        changes = dict(changes)
        if args.steps is not None:
            changes = {**changes, "total_timesteps": args.steps}
        sample_only = changes.pop("sample_only", False)
        cfg = dataclasses.replace(base, **changes)
        r = measure(module, cfg, args.seeds, args.repeats, sample_only)
        rows.append({"run": name, "total_timesteps": cfg.total_timesteps, **r})
        loads.append(os.getloadavg()[0])
        print(
            f"{name:12s} {cfg.total_timesteps:7d} {args.seeds:5d} {r['compile_s']:9.1f} "
            f"{r['run_s']:7.2f} {r['cpu_s']:7.2f} {r['steps_per_s']:9.0f} "
            f"{r['final_return']:8.1f}",
            flush=True,
        )
    if args.save:
        data = json.loads(args.save.read_text())
        data["dqn_profile"] = {
            "rows": rows,
            "seeds": args.seeds,
            "repeats": args.repeats,
            "load_1min": [min(loads), max(loads)],
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "command": "python benchmarks/offpolicy_speed.py "
            + " ".join(["--runs", *args.runs, "--repeats", str(args.repeats), "--save"]),
        }
        args.save.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
