"""The ``minatar`` suite: PPO on four MinAtar games beside gymnax-blines' numbers.

gymnax's MinAtar games have no sticky actions (the original MinAtar repeats the
previous action with probability 0.1; gymnax does not) and use the minimal action
set, so the numbers compare with gymnax-blines (PPO, 10M steps: Breakout 28,
Asterix 15, Freeway 58, SpaceInvaders 131), not with the MinAtar paper's.

Settings (gymnax-blines' MinAtar PPO, with jaxrl's small CNN torso): 64 environments
× 128 steps, 4 epochs of 8 minibatches, Adam 5e-4 without annealing, γ 0.99, λ 0.95,
clip 0.2, entropy 0.01, value clipping. The full budget is 10M steps per game; on
a CPU the machine allows less (``--steps``), and the row records the budget and the
wall time it took.
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness.common import select_names
from benchmarks.harness.returns import Published, RunSpec, random_policy_return, run_spec

__all__ = ["GAMES", "PPO_MINATAR", "run_suite"]

GAMES = {
    "Breakout-MinAtar": 28.0,
    "Asterix-MinAtar": 15.0,
    "Freeway-MinAtar": 58.0,
    "SpaceInvaders-MinAtar": 131.0,
}
SOURCE = "gymnax-blines PPO (no sticky actions)"
FULL_STEPS = 10_000_000

PPO_MINATAR = dict(
    torso="cnn",
    num_envs=64,
    num_steps=128,
    num_epochs=4,
    num_minibatches=8,
    learning_rate=5e-4,
    anneal_lr=False,
    gamma=0.99,
    gae_lambda=0.95,
    clip_eps=0.2,
    ent_coef=0.01,
)


def spec(game: str, steps: int, seeds: int) -> RunSpec:
    """The returns-suite run of PPO on ``game`` for ``steps`` environment steps."""
    return RunSpec(
        name=f"ppo-{game}",
        algo="ppo",
        env_id=game,
        overrides={**PPO_MINATAR, "total_timesteps": steps},
        seeds=seeds,
        published=Published(GAMES[game], SOURCE, 0.0, FULL_STEPS),
        target=None,
    )


def run_suite(
    quick: bool,
    names: list[str] | None = None,
    steps: int | None = None,
    seeds: int | None = None,
    log=print,
) -> tuple[list[dict], dict[str, Any]]:
    """PPO on the selected games; quick: 2 updates × 2 seeds, full: ``steps`` (10M) × 5 seeds."""
    games = select_names(list(GAMES), names)
    per_update = PPO_MINATAR["num_envs"] * PPO_MINATAR["num_steps"]
    steps = steps or (2 * per_update if quick else FULL_STEPS)
    n = seeds or (2 if quick else 5)
    rows, randoms = [], {}
    for game in games:
        log(f"[minatar] {game}: {steps:,} steps × {n} seeds")
        row = run_spec(spec(game, steps, n), quick=False, seeds=n)
        s = row["final_return"]
        log(
            f"[minatar] {game}: IQM {s['iqm']}, mean {s['mean']} | "
            f"compile {row['compile_s']:.1f} s, run {row['run_s']:.1f} s"
        )
        rows.append(row)
        randoms[game] = random_policy_return(game, 16, 200 if quick else 3_000)
    notes = [
        "gymnax MinAtar: no sticky actions, minimal action sets; gymnax-blines' numbers are "
        f"at {FULL_STEPS // 1_000_000}M steps."
    ]
    return rows, {"random_returns": randoms, "suite_notes": notes}
