"""Compare REINFORCE, A2C, PPO and TRPO on CartPole-v1 over the same seeds, in one figure.

    python examples/compare_policy_gradients.py [--seeds 5] [--total-steps 500000]
        [--out docs/figures/compare_policy_gradients.png]

Each algorithm trains all seeds in one compiled program (`jax.jit(jax.vmap(train))`).
The four differ in how many environment steps one update uses, so each
learning curve is first averaged into a common grid of step bins; the figure
shows the IQM over seeds with a 95% bootstrap band (`jaxrl.run.rundir.plot_curves`).
"""

import argparse
import os
import time
from pathlib import Path

import jax
import numpy as np

from jaxrl.agents import a2c, ppo, reinforce, trpo
from jaxrl.run.rundir import plot_curves
from jaxrl.run.stats import final_returns, iqm

ENV_ID = "CartPole-v1"

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"


def configs(total_steps: int) -> dict:
    """Each algorithm with its own defaults (see its Config) on the same environment."""
    return {
        "REINFORCE (baseline)": (
            reinforce,
            reinforce.Config(env_id=ENV_ID, total_timesteps=total_steps),
        ),
        "A2C": (a2c, a2c.Config(env_id=ENV_ID, total_timesteps=total_steps)),
        "PPO": (ppo, ppo.Config(env_id=ENV_ID, total_timesteps=total_steps)),
        "TRPO": (trpo, trpo.Config(env_id=ENV_ID, total_timesteps=total_steps)),
    }


def to_grid(returns: np.ndarray, steps_per_update: int, total_steps: int, bins: int):
    """[runs, updates] → [runs, bins]: the mean of the finite returns inside each step bin."""
    steps = (np.arange(returns.shape[1]) + 1) * steps_per_update
    which = np.minimum((steps - 1) * bins // total_steps, bins - 1)
    out = np.full((returns.shape[0], bins), np.nan)
    for b in range(bins):
        window = returns[:, which == b]
        finite = np.isfinite(window)
        count = finite.sum(axis=1)
        total = np.where(finite, window, 0.0).sum(axis=1)
        out[:, b] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2 if QUICK else 5)
    parser.add_argument("--total-steps", type=int, default=2_048 if QUICK else 500_000)
    parser.add_argument("--bins", type=int, default=4 if QUICK else 100)
    figure = "compare_policy_gradients.png"
    parser.add_argument(
        "--out", default=f"runs/examples-quick/{figure}" if QUICK else f"docs/figures/{figure}"
    )
    args = parser.parse_args()

    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)  # the same seeds for all four
    curves = {}
    for label, (module, config) in configs(args.total_steps).items():
        start = time.perf_counter()
        _, metrics = jax.jit(jax.vmap(module.make_train(config)))(keys)
        returns = np.asarray(metrics["episode_return"])  # [seeds, updates], NaN: none finished
        spu = config.num_envs * config.num_steps
        curves[label] = to_grid(returns, spu, args.total_steps, args.bins)
        final = final_returns(returns)
        print(
            f"{label:22s} final return IQM {iqm(final):6.1f}  per seed {np.round(final, 1)}  "
            f"({time.perf_counter() - start:.0f} s with compile)"
        )

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    plot_curves(
        Path(args.out),
        curves,
        steps_per_update=args.total_steps // args.bins,
        title=f"{ENV_ID}: IQM over {args.seeds} seeds, 95% bootstrap band",
    )
    print("figure:", args.out)


if __name__ == "__main__":
    main()
