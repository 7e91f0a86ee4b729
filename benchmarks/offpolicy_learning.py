"""Learning results of the off-policy agents: final return over seeds (mean, IQM, 95% CI).

Runs (``--runs``), each with the module's default Config unless listed:

* ``dqn-cartpole``: DQN on CartPole-v1, 500k steps, 8 seeds (TARGETS.md: CleanRL 489 ± 16).
* ``dqn-acrobot``: DQN on Acrobot-v1, 500k steps, 5 seeds (CleanRL −92 ± 7).
* ``sac-pendulum``, ``td3-pendulum``, ``ddpg-pendulum``: Pendulum-v1, 20k steps, 5 seeds
  (SB3 zoo: −157, −152, −152).

All seeds of a run train in one compiled program (``jax.vmap``). A seed's final return
is the mean return of the training episodes that ended in the last 5% of its updates
(at least one update), i.e. with the exploration of training (ε-greedy, action noise,
SAC's stochastic policy); the zoo's numbers are deterministic evaluations, which are
usually a little higher.

Run: ``python benchmarks/offpolicy_learning.py --runs sac-pendulum`` (minutes each on
2 CPU cores); ``--set field=value`` changes the Config of every run given.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np

from jaxrl._config import config_from_overrides, config_to_dict
from jaxrl.agents import get_algorithm
from jaxrl.run.stats import final_returns, summarize

RUNS = {
    "dqn-cartpole": ("dqn", {"env_id": "CartPole-v1", "total_timesteps": 500_000}, 8),
    "dqn-acrobot": ("dqn", {"env_id": "Acrobot-v1", "total_timesteps": 500_000}, 5),
    "sac-pendulum": ("sac", {"env_id": "Pendulum-v1", "total_timesteps": 20_000}, 5),
    "td3-pendulum": ("td3", {"env_id": "Pendulum-v1", "total_timesteps": 20_000}, 5),
    "ddpg-pendulum": ("ddpg", {"env_id": "Pendulum-v1", "total_timesteps": 20_000}, 5),
}


def run(name: str, seeds: int | None, overrides: dict) -> dict:
    algo, settings, default_seeds = RUNS[name]
    seeds = seeds or default_seeds
    module = get_algorithm(algo)
    cfg = config_from_overrides(module.Config, {**settings, **overrides})
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(module.make_train(cfg))).lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(keys)
    returns = np.asarray(metrics["episode_return"])
    run_s = time.perf_counter() - start
    finals = final_returns(returns)
    return {
        "run": name,
        "algo": algo,
        "seeds": seeds,
        "compile_s": round(compile_s, 1),
        "run_s": round(run_s, 1),
        "final_returns": [round(float(x), 1) for x in finals],
        **summarize(finals),
        "config": config_to_dict(cfg),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--seeds", type=int, default=None, help="override the seed count")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--json", action="store_true", help="one JSON line per run")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    print(f"# {platform.node()}, jax {jax.__version__}, devices {jax.devices()}")
    for name in args.runs:
        r = run(name, args.seeds, overrides)
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        lo, hi = r["iqm_ci95"]
        print(
            f"{name:14s} seeds {r['seeds']}  mean {r['mean']:8.1f}  IQM {r['iqm']:8.1f} "
            f"[{lo:.1f}, {hi:.1f}]  min {r['min']:.1f}  compile {r['compile_s']}s  "
            f"run {r['run_s']}s  finals {r['final_returns']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
