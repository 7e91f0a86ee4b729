"""Train PPO on CartPole-v1 over several seeds in one compiled program, then plot.

    python examples/ppo_cartpole.py [--seeds 4] [--out runs/ppo-cartpole-example]

The whole run (environment steps, GAE, minibatch epochs) is one `jax.jit` of a
`jax.vmap` over seeds; `jaxrl.run.train` adds chunks, a progress bar and the
run directory (config.json, metrics.csv, summary.json, curves.png).
"""

import argparse
import os

import jax
import numpy as np

from jaxrl.agents import ppo
from jaxrl.run import train

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2 if QUICK else 4)
    parser.add_argument("--total-steps", type=int, default=1_024 if QUICK else 500_000)
    parser.add_argument(
        "--out",
        default="runs/examples-quick/ppo-cartpole" if QUICK else "runs/ppo-cartpole-example",
    )
    args = parser.parse_args()

    config = ppo.Config(env_id="CartPole-v1", total_timesteps=args.total_steps)

    # The library level: one pure function, jitted and vmapped over seeds.
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    _, metrics = jax.jit(jax.vmap(ppo.make_train(config)))(keys)
    returns = np.asarray(metrics["episode_return"])  # [seeds, updates], NaN where none finished
    print("mean return of the last 10 updates per seed:", np.nanmean(returns[:, -10:], axis=1))

    # The experiment level: the same training with a progress bar and a run directory.
    result = train(ppo, config, list(range(args.seeds)), args.out)
    final = result.summary["final_return"]
    print(f"final return: IQM {final['iqm']:.1f}, mean {final['mean']:.1f} over {final['n']} seeds")
    print("figure:", f"{args.out}/curves.png")


if __name__ == "__main__":
    main()
