"""The ``tabular`` suite: the Sutton & Barto reproductions and FrozenLake's optimum.

Rows:

* ``cliff-walking``: SARSA and Q-learning on Cliff Walking (example 6.6, figure 6.4),
  α = 0.5, ε = 0.1, all seeds in one vmap (``examples/cliff_walking.py``'s ``train``).
  The book: SARSA's greedy path is the safe one (return −17), Q-learning's the optimal
  one along the cliff (−13), and Q-learning's online return is the worse of the two.
* ``maximization-bias``: Q-learning and Double Q-learning on the MDP of example 6.7
  (figure 6.5), α = 0.1, ε = 0.1: the share of "left" actions from A. The book:
  Q-learning first prefers left far more often than the 5% that ε-greedy forces on an
  optimal agent; Double Q-learning stays near 5%.
* ``frozenlake-vi``: value iteration on FrozenLake 4x4 (slippery), the greedy policy's
  success rate within the 100-step limit, computed exactly (finite-horizon policy
  evaluation): ≈ 0.74 (the Gymnasium registry's optimum for FrozenLake-v1).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from benchmarks.harness.common import load_example, row_provenance, select_names
from benchmarks.harness.stats import summarize_scores

__all__ = ["ROWS", "cliff_walking", "frozen_lake", "maximization_bias", "run_suite"]

ROWS = ("cliff-walking", "maximization-bias", "frozenlake-vi")


def cliff_walking(seeds: int, episodes: int) -> dict[str, Any]:
    """SARSA and Q-learning on Cliff Walking, as in ``examples/cliff_walking.py``."""
    from jaxrl.tabular import make_task

    example = load_example("cliff_walking")
    task = make_task("CliffWalking")
    out: dict[str, Any] = {"seeds": seeds, "episodes": episodes, "alpha": 0.5, "epsilon": 0.1}
    start = time.time()
    for algo in ("sarsa", "q-learning"):
        r = example.train(algo, seeds, episodes, task)
        online = r["returns"][:, min(100, episodes // 2) :].mean(axis=1)  # [seeds]
        greedy = np.round(r["greedy_returns"]).astype(int)
        values, counts = np.unique(greedy, return_counts=True)
        out[algo] = {
            "online_return": summarize_scores(online),
            "greedy_return": summarize_scores(greedy),
            "greedy_return_shares": {
                str(v): c / seeds for v, c in zip(values, counts, strict=True)
            },
            "curve_mean": _downsample(r["returns"].mean(axis=0), 100),
            "seconds": r["seconds"],
        }
    out["wall_s"] = time.time() - start
    sarsa, q = out["sarsa"], out["q-learning"]
    out["checks"] = {
        "sarsa_greedy_is_safe_path": sarsa["greedy_return"]["iqm"] == -17,
        "q_learning_greedy_is_optimal_path": q["greedy_return"]["iqm"] == -13,
        "q_learning_online_worse": q["online_return"]["mean"] < sarsa["online_return"]["mean"],
    }
    out["published"] = {
        "sarsa_greedy": -17,
        "q_learning_greedy": -13,
        "source": "Sutton & Barto, 2nd ed., example 6.6 / figure 6.4",
    }
    return out


def _downsample(x: np.ndarray, points: int) -> list[float]:
    x = np.asarray(x, dtype=np.float64)
    edges = np.unique(np.linspace(0, x.size, min(points, x.size) + 1).astype(int))
    return [float(x[a:b].mean()) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def maximization_bias(seeds: int, episodes: int) -> dict[str, Any]:
    """Share of left actions from A for Q-learning and Double Q-learning (figure 6.5)."""
    from jaxrl.tabular import Config, make_train

    keys = jax.random.split(jax.random.key(0), seeds)
    out: dict[str, Any] = {"seeds": seeds, "episodes": episodes, "alpha": 0.1, "epsilon": 0.1}
    start = time.time()
    for algo in ("q-learning", "double-q"):
        config = Config(
            algorithm=algo,
            env="MaximizationBias",
            num_episodes=episodes,
            alpha=0.1,
            epsilon=0.1,
            gamma=1.0,
            track_greedy_value=False,
        )
        _, metrics = jax.jit(jax.vmap(make_train(config)))(keys)
        # An episode that went left from A lasts two steps, one that went right one step.
        left = (np.asarray(metrics["episode_length"]) == 2).mean(axis=0)  # [episodes]
        tail_from = (2 * episodes) // 3  # the last third (episodes 201–300 in the book's run)
        tail = left[tail_from:]
        out[algo] = {
            "left_share_first10": float(left[:10].mean()),
            "left_share_peak": float(left.max()),
            "peak_episode": int(left.argmax()) + 1,
            "left_share_tail": float(tail.mean()),
            "tail_from_episode": tail_from + 1,
            "curve": _downsample(left, 100),
        }
    out["wall_s"] = time.time() - start
    q, dq = out["q-learning"], out["double-q"]
    out["checks"] = {
        "q_learning_peak_far_above_5pct": q["left_share_peak"] > 0.3,
        "double_q_peak_below_q_learning": dq["left_share_peak"] < q["left_share_peak"],
        "double_q_tail_near_5pct": abs(dq["left_share_tail"] - 0.05) < 0.03,
    }
    out["published"] = {
        "optimal_left_share": 0.05,
        "source": "Sutton & Barto, 2nd ed., example 6.7 / figure 6.5 (qualitative)",
    }
    return out


def frozen_lake() -> dict[str, Any]:
    """Value iteration on FrozenLake 4x4 and 8x8: the greedy policy's exact success rate."""
    from jaxrl.tabular import solve

    start = time.time()
    out: dict[str, Any] = {}
    for env in ("FrozenLake-4x4", "FrozenLake-8x8"):
        s = solve("value-iteration", env)
        out[env] = {
            "gamma": s.gamma,
            "iterations": int(s.result.iterations),
            "start_value": s.start_value,
            "success_rate": s.time_limited_return,
            "time_limit": int(s.task.env_params.max_steps_in_episode),
        }
    out["wall_s"] = time.time() - start
    out["published"] = {
        "FrozenLake-4x4": 0.74,
        "source": "Gymnasium registry (FrozenLake-v1, optimal ≈ 0.74 within 100 steps)",
    }
    out["checks"] = {
        "frozenlake_4x4_optimum": abs(out["FrozenLake-4x4"]["success_rate"] - 0.74) < 0.01
    }
    return out


def run_suite(
    quick: bool, names: list[str] | None = None, seeds: int | None = None, log=print, on_row=None
) -> tuple[list[dict], dict[str, Any]]:
    """Runs the selected rows; quick: 10 seeds × 100 episodes (max. bias: 200 seeds)."""
    rows = []
    for name in select_names(list(ROWS), names):
        log(f"[tabular] {name}")
        try:
            if name == "cliff-walking":
                res = cliff_walking(seeds or (10 if quick else 200), 100 if quick else 500)
            elif name == "maximization-bias":
                res = maximization_bias(seeds or (200 if quick else 10_000), 100 if quick else 300)
            else:
                res = frozen_lake()
        except Exception as e:  # one broken row must not cost the others
            log(f"[tabular] {name}: FAILED: {type(e).__name__}: {e}")
            continue
        rows.append({"name": name, **res, "provenance": row_provenance()})
        if on_row is not None:
            on_row(rows[-1], {})
        log(f"[tabular] {name}: checks {res['checks']} ({res['wall_s']:.1f} s)")
    return rows, {}
