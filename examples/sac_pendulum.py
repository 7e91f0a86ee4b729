"""Train SAC on Pendulum-v1 over several seeds in one compiled program, then write a run.

    python examples/sac_pendulum.py [--seeds 4] [--total-steps 20000] [--out runs/sac-pendulum]

The whole run (acting, environment steps, replay, critic/actor/temperature updates) is
one `jax.jit` of a `jax.vmap` over seeds. Numeric Config fields are traced, so the
second part sweeps the initial temperature in the same way: one program, 2 × seeds runs.
`jaxrl.run.train` adds chunks, a progress bar and the run directory.
"""

import argparse
import dataclasses
import os

import jax
import numpy as np

from jaxrl.agents import sac
from jaxrl.run import sweep

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2 if QUICK else 4)
    parser.add_argument("--total-steps", type=int, default=1_000 if QUICK else 20_000)
    parser.add_argument("--hidden", type=int, default=64, help="width of the two hidden layers")
    parser.add_argument(
        "--out",
        default="runs/examples-quick/sac-pendulum" if QUICK else "runs/sac-pendulum-example",
    )
    args = parser.parse_args()

    config = sac.Config(
        env_id="Pendulum-v1",
        total_timesteps=args.total_steps,
        hidden_sizes=(args.hidden, args.hidden),
    )
    if QUICK:  # 100 gradient steps, 4 updates (metric rows) of 250 steps: the same code path
        config = dataclasses.replace(
            config,
            learning_starts=max(0, args.total_steps - 100),
            steps_per_update=250,
            buffer_size=args.total_steps,
        )

    # The library level: one pure function, jitted and vmapped over seeds.
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    _, metrics = jax.jit(jax.vmap(sac.make_train(config)))(keys)
    returns = np.asarray(metrics["episode_return"])  # [seeds, updates]
    print("return of the last update per seed:", np.round(returns[:, -1], 1))
    print("temperature α at the end:", np.round(np.asarray(metrics["alpha"])[:, -1], 3))
    print("policy entropy at the end:", np.round(np.asarray(metrics["entropy"])[:, -1], 2))

    # The experiment level: a sweep over a traced field is one program; a run directory.
    result = sweep(sac, config, {"init_alpha": [1.0, 0.1]}, list(range(args.seeds)), args.out)
    print(result.summary)
    print("figure:", f"{args.out}/curves.png")


if __name__ == "__main__":
    main()
