"""Q-learning vs Double Q-learning on the maximization-bias MDP: Sutton & Barto, figure 6.5.

    python examples/maximization_bias.py [--seeds 10000] [--episodes 300] [--out FILE.png]

From A, "right" ends the episode with reward 0 and "left" leads to B, whose 10
actions all end it with a reward drawn from N(−0.1, 1): left is worse in
expectation. Q-learning's max over B's noisy estimates is biased upwards, so
early on it prefers left; Double Q-learning selects with one table and evaluates
with the other and stays near the 5% of left actions that ε-greedy exploration
(ε = 0.1 over two actions) forces. α = 0.1, γ = 1, all seeds in one `vmap`.

An episode that went left takes two steps, one that went right takes one, so the
share of left actions from A is the share of episodes of length 2.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from jaxrl.tabular import Config, make_train

ALGORITHMS = {"q-learning": "Q-learning", "double-q": "Double Q-learning"}

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50 if QUICK else 10_000)
    parser.add_argument("--episodes", type=int, default=210 if QUICK else 300)
    figure = "maximization_bias.png"
    parser.add_argument(
        "--out", default=f"runs/examples-quick/{figure}" if QUICK else f"docs/figures/{figure}"
    )
    args = parser.parse_args()

    left = {}
    keys = jax.random.split(jax.random.key(0), args.seeds)
    for algorithm, name in ALGORITHMS.items():
        config = Config(
            algorithm=algorithm,
            env="MaximizationBias",
            num_episodes=args.episodes,
            alpha=0.1,
            epsilon=0.1,
            gamma=1.0,
            track_greedy_value=False,
        )
        start = time.perf_counter()
        _, metrics = jax.jit(jax.vmap(make_train(config)))(keys)
        lengths = np.asarray(metrics["episode_length"])  # [seeds, episodes]
        seconds = time.perf_counter() - start
        left[algorithm] = (lengths == 2).mean(axis=0)  # share of runs that went left
        share = left[algorithm]
        print(
            f"{name:18s} % left from A: episode 1–10 {100 * share[:10].mean():5.1f}, "
            f"peak {100 * share.max():5.1f} (episode {share.argmax() + 1}), "
            f"episodes 200–{args.episodes} {100 * share[199:].mean():5.1f}   "
            f"({seconds:.1f} s incl. compile)"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    episodes = np.arange(1, args.episodes + 1)
    for algorithm, name in ALGORITHMS.items():
        ax.plot(episodes, 100 * left[algorithm], label=name)
    ax.axhline(5, color="k", ls="--", lw=1, label="optimal (ε-greedy: 5%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(1, args.episodes)
    ax.set_xlabel("Episodes")
    ax.set_ylabel("% left actions from A")
    ax.set_title(
        f"Maximization bias, α = 0.1, ε = 0.1, B has 10 actions (mean of {args.seeds} runs)",
        fontsize=10,
    )
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print("figure:", args.out)


if __name__ == "__main__":
    main()
