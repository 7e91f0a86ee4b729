"""Learning results and speed of REINFORCE, A2C and TRPO (beside PPO), many seeds per program.

    python benchmarks/pg_returns.py returns [NAME ...] [--seeds 8] [--out benchmarks/results]
    python benchmarks/pg_returns.py speed [--num-envs 16] [--total-steps 100000]

``returns`` trains each named run (default: all in ``RUNS``) for every seed
under one ``jax.jit(jax.vmap(train))`` and prints, per run: the final return
(each seed's mean episode return over the last 5% of updates) as mean, IQM and
95% bootstrap CI over seeds, the compile time and the run time apart. ``speed``
times one seed of each algorithm at the same number of environments (the
rollout length is each algorithm's own). Results are printed as JSON lines and
appended to ``--out``/pg_returns.jsonl. Never run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

from jaxrl._config import config_to_dict
from jaxrl.agents import a2c, ppo, reinforce, trpo
from jaxrl.run.stats import final_returns, summarize

# name -> (module, Config). Budgets and settings as in benchmarks/RESULTS.md.
RUNS = {
    "cartpole-a2c": (a2c, a2c.Config(env_id="CartPole-v1", total_timesteps=500_000)),
    "cartpole-trpo": (trpo, trpo.Config(env_id="CartPole-v1", total_timesteps=500_000)),
    "cartpole-reinforce": (
        reinforce,
        reinforce.Config(env_id="CartPole-v1", total_timesteps=500_000),
    ),
    "acrobot-a2c": (
        a2c,
        a2c.Config(
            env_id="Acrobot-v1",
            total_timesteps=500_000,
            num_envs=16,
            normalize_obs=True,
            normalize_rewards=True,
        ),
    ),
    "acrobot-trpo": (
        trpo,
        trpo.Config(env_id="Acrobot-v1", total_timesteps=500_000, normalize_obs=True),
    ),
    "pendulum-trpo": (
        trpo,
        trpo.Config(
            env_id="Pendulum-v1",
            total_timesteps=100_000,
            num_envs=2,
            num_steps=1024,
            gamma=0.9,
            normalize_obs=True,
            vf_epochs=20,
            vf_minibatches=16,
        ),
    ),
}


def _machine() -> dict:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "load_average": os.getloadavg(),
    }


def time_train(module, cfg, keys) -> tuple[dict, float, float]:
    """(metrics as NumPy, compile seconds, run seconds) of one vmapped program over ``keys``."""
    train = jax.jit(jax.vmap(module.make_train(cfg)))
    start = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(keys)
    metrics = jax.tree.map(np.asarray, jax.block_until_ready(metrics))
    return metrics, compile_s, time.perf_counter() - start


def run_returns(name: str, seeds: int) -> dict:
    module, cfg = RUNS[name]
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    metrics, compile_s, run_s = time_train(module, cfg, keys)
    final = final_returns(metrics["episode_return"], 0.05)
    return {
        "kind": "returns",
        "name": name,
        "algo": module.__name__.rsplit(".", 1)[-1],
        "config": config_to_dict(cfg),
        "seeds": seeds,
        "final_return": summarize(final),
        "per_seed": [float(x) for x in final],
        "compile_s": compile_s,
        "run_s": run_s,
        "steps_per_s": seeds * cfg.total_timesteps / run_s,
        "machine": _machine(),
    }


def run_speed(num_envs: int, total: int) -> list[dict]:
    configs = {
        "ppo": (ppo, ppo.Config(num_envs=num_envs, num_steps=128, total_timesteps=total)),
        "a2c": (a2c, a2c.Config(num_envs=num_envs, num_steps=5, total_timesteps=total)),
        "trpo": (trpo, trpo.Config(num_envs=num_envs, num_steps=128, total_timesteps=total)),
        "reinforce": (
            reinforce,
            reinforce.Config(num_envs=num_envs, num_steps=128, total_timesteps=total),
        ),
    }
    out = []
    for name, (module, cfg) in configs.items():
        keys = jax.random.split(jax.random.PRNGKey(0), 1)
        _, compile_s, run_s = time_train(module, cfg, keys)
        out.append(
            {
                "kind": "speed",
                "algo": name,
                "env_id": cfg.env_id,
                "num_envs": num_envs,
                "num_steps": cfg.num_steps,
                "total_timesteps": total,
                "compile_s": compile_s,
                "run_s": run_s,
                "steps_per_s": total / run_s,
                "machine": _machine(),
            }
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", default="benchmarks/results")
    sub = parser.add_subparsers(dest="cmd", required=True)
    ret = sub.add_parser("returns", parents=[common])
    ret.add_argument("names", nargs="*", default=list(RUNS))
    ret.add_argument("--seeds", type=int, default=8)
    spd = sub.add_parser("speed", parents=[common])
    spd.add_argument("--num-envs", type=int, default=16)
    spd.add_argument("--total-steps", type=int, default=100_000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.cmd == "returns":
        unknown = [n for n in args.names if n not in RUNS]
        if unknown:
            parser.error(f"unknown run(s) {unknown}; known: {', '.join(RUNS)}")
        records = (run_returns(n, args.seeds) for n in args.names)
    else:
        records = run_speed(args.num_envs, args.total_steps)
    with open(out / "pg_returns.jsonl", "a") as f:
        for record in records:
            line = json.dumps(record)
            print(line, flush=True)
            f.write(line + "\n")


if __name__ == "__main__":
    main()
