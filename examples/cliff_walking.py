"""SARSA vs Q-learning on Cliff Walking: Sutton & Barto, figure 6.4 (example 6.6).

    python examples/cliff_walking.py [--seeds 100] [--episodes 500] [--out FILE.png]

Both agents use α = 0.5, ε = 0.1, γ = 1. All seeds of an algorithm run as one
`jax.jit(jax.vmap(train))`. Q-learning learns the values of the optimal path
along the cliff edge, but its ε-greedy behaviour on that path falls off now and
then, so its online return is worse; SARSA learns the values of the ε-greedy
behaviour itself and walks the longer, safer path.

The figure shows the online return per episode (mean over seeds, moving average)
and each algorithm's most common learned greedy path.
"""

from __future__ import annotations

import argparse
import collections
import os
import time

import jax
import numpy as np

from jaxrl.run.stats import summarize
from jaxrl.tabular import (
    Config,
    draw_grid,
    finite_horizon_evaluation,
    greedy_path,
    greedy_policy,
    make_task,
    make_train,
)

ALGORITHMS = {"sarsa": "Sarsa", "q-learning": "Q-learning"}

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter windows at the start)."""
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def train(algorithm: str, seeds: int, episodes: int, task) -> dict:
    config = Config(
        algorithm=algorithm,
        env="CliffWalking",
        num_episodes=episodes,
        alpha=0.5,
        epsilon=0.1,
        # The exact greedy-policy value after every episode costs more than the learning
        # itself here; the final greedy policies are evaluated once below instead.
        track_greedy_value=False,
    )
    keys = jax.random.split(jax.random.key(0), seeds)
    start = time.perf_counter()
    state, metrics = jax.jit(jax.vmap(make_train(config)))(keys)
    returns = np.asarray(metrics["episode_return"])  # [seeds, episodes]
    seconds = time.perf_counter() - start
    policies = greedy_policy(state.tables.q, task.mdp.action_mask)  # [seeds, S]
    horizon = task.env_params.max_steps_in_episode
    values = jax.vmap(lambda p: finite_horizon_evaluation(task.mdp, p, horizon))(policies)
    start_state = int(np.argmax(np.asarray(task.mdp.initial)))
    paths = [tuple(greedy_path(task.mdp, p)) for p in np.asarray(policies)]
    return {
        "returns": returns,
        "greedy_returns": np.asarray(values)[:, start_state],
        "paths": paths,
        "seconds": seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5 if QUICK else 100)
    parser.add_argument("--episodes", type=int, default=120 if QUICK else 500)
    parser.add_argument("--smooth", type=int, default=10)
    parser.add_argument(
        "--out",
        default="runs/examples-quick/cliff_walking.png"
        if QUICK
        else "docs/figures/cliff_walking.png",
    )
    args = parser.parse_args()

    task = make_task("CliffWalking")
    results = {a: train(a, args.seeds, args.episodes, task) for a in ALGORITHMS}

    print(f"Cliff Walking, α = 0.5, ε = 0.1, {args.seeds} seeds × {args.episodes} episodes")
    for algorithm, name in ALGORITHMS.items():
        r = results[algorithm]
        per_seed = r["returns"][:, 100:].mean(axis=1)  # online return, episodes 100+
        s = summarize(per_seed)
        print(
            f"{name:10s} online return (episodes 100–{args.episodes}, per seed): "
            f"mean {s['mean']:.1f}, IQM {s['iqm']:.1f}, 95% CI of IQM "
            f"[{s['iqm_ci95'][0]:.1f}, {s['iqm_ci95'][1]:.1f}]"
            f"   ({r['seconds']:.1f} s incl. compile)"
        )
        counts = collections.Counter(np.round(r["greedy_returns"]).astype(int).tolist())
        shares = ", ".join(f"{k}: {v / args.seeds:.0%}" for k, v in sorted(counts.items()))
        print(f"{'':10s} greedy policy's return (share of seeds): {shares}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_curve, ax_grid) = plt.subplots(
        2, 1, figsize=(7.5, 7.5), gridspec_kw={"height_ratios": [1.6, 1]}
    )
    episodes = np.arange(1, args.episodes + 1)
    paths = {}
    for algorithm, name in ALGORITHMS.items():
        r = results[algorithm]
        ax_curve.plot(episodes, smooth(r["returns"].mean(axis=0), args.smooth), label=name)
        path, count = collections.Counter(r["paths"]).most_common(1)[0]
        ret = int(round(r["greedy_returns"][r["paths"].index(path)]))
        same = np.mean(np.round(r["greedy_returns"]) == ret)
        label = f"{name}: return {ret} ({same:.0%} of seeds; this route {count / args.seeds:.0%})"
        paths[label] = list(path)
    ax_curve.set_ylim(-100, -15)
    ax_curve.set_xlim(0, args.episodes)
    ax_curve.set_xlabel("Episodes")
    ax_curve.set_ylabel("Sum of rewards\nduring episode")
    ax_curve.set_title(
        f"Cliff Walking, α = 0.5, ε = 0.1 (mean of {args.seeds} runs, "
        f"{args.smooth}-episode moving average)",
        fontsize=10,
    )
    ax_curve.legend(loc="lower right")
    ax_curve.grid(alpha=0.3)
    # The grid: greedy values are not the point here, so draw it flat.
    draw_grid(
        ax_grid,
        np.zeros(task.mdp.num_states),
        task.layout,
        paths=paths,
        title="most common learned greedy paths (S bottom left, G bottom right)",
        cmap="Greys",
        annotate=False,
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print("figure:", args.out)


if __name__ == "__main__":
    main()
