"""Train PPO on CartPole-v1 over several seeds in one compiled program, then plot.

    python examples/ppo_cartpole.py [--seeds 4] [--out runs/ppo-cartpole-example]

The whole run (environment steps, GAE, minibatch epochs) is one `jax.jit` of a
`jax.vmap` over seeds; `jaxrl.run.train` adds chunks, a progress bar and the
run directory (config.json, metrics.csv, summary.json, curves.png).
"""

import argparse

import jax
import numpy as np

from jaxrl.agents import ppo
from jaxrl.run import train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--total-steps", type=int, default=500_000)
    parser.add_argument("--out", default="runs/ppo-cartpole-example")
    args = parser.parse_args()

    config = ppo.Config(env_id="CartPole-v1", total_timesteps=args.total_steps)

    # The library level: one pure function, jitted and vmapped over seeds.
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    _, metrics = jax.jit(jax.vmap(ppo.make_train(config)))(keys)
    returns = np.asarray(metrics["episode_return"])  # [seeds, updates], NaN where none finished
    print("mean return of the last 10 updates per seed:", np.nanmean(returns[:, -10:], axis=1))

    # The experiment level: the same training with a progress bar and a run directory.
    _, summary = train(ppo, config, list(range(args.seeds)), args.out)
    print("final return:", summary["final_return"], "\nfigure:", f"{args.out}/curves.png")


if __name__ == "__main__":
    main()
