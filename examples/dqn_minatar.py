"""Double DQN with the CNN torso on a MinAtar game, then a run directory with curves.

    python examples/dqn_minatar.py [--env Breakout-MinAtar] [--total-steps 1000000]

MinAtar (Young & Tian 2019, https://arxiv.org/abs/1903.03176) renders Atari-like games
as 10×10×C binary images; gymnax steps them inside the compiled program. The settings
follow the MinAtar DQN baseline in spirit (one 16-channel 3×3 convolution, 128 hidden
units, replay 100k, ε from 1 to 0.01 over the first 10% of the run, a hard target
update every 1000 environment steps) with Adam and a step of learning every 4 steps.
About 15 minutes for 1M steps on 2 CPU cores; minutes on a GPU.
"""

import argparse
import os
import time

import jax
import numpy as np

from jaxrl.agents import dqn
from jaxrl.run import train

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Breakout-MinAtar")
    parser.add_argument("--total-steps", type=int, default=1_000 if QUICK else 1_000_000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write a run directory here")
    args = parser.parse_args()

    config = dqn.Config(
        env_id=args.env,
        total_timesteps=args.total_steps,
        torso="cnn",
        hidden_sizes=(128,),
        double=True,
        loss="huber",
        buffer_size=1_000 if QUICK else 100_000,
        batch_size=32,
        learning_starts=600 if QUICK else 5_000,  # QUICK: 100 gradient steps
        train_frequency=4,
        gradient_steps=1,
        steps_per_update=200 if QUICK else 10_000,
        # gradient steps: every 1000 environment steps (QUICK: every 200, so some happen)
        target_update_interval=50 if QUICK else 250,
        tau=1.0,
        learning_rate=2.5e-4,
        exploration_fraction=0.1,
        eps_end=0.01,
    )

    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(dqn.make_train(config))).lower(keys).compile()
    compiled_at = time.perf_counter()
    _, metrics = compiled(keys)
    returns = np.asarray(metrics["episode_return"])  # [seeds, updates]
    done_at = time.perf_counter()
    print(f"{args.env}: compile {compiled_at - start:.1f}s, run {done_at - compiled_at:.1f}s")
    print("return of the last 5 updates per seed:", np.round(np.nanmean(returns[:, -5:], 1), 2))

    if args.out:
        result = train(dqn, config, list(range(args.seeds)), args.out)
        print(result.summary, "\nfigure:", f"{args.out}/curves.png")


if __name__ == "__main__":
    main()
