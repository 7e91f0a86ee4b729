"""The ``minatar`` suite: PPO on four MinAtar games beside gymnax-blines' numbers.

gymnax's MinAtar games have no sticky actions (the original MinAtar repeats the
previous action with probability 0.1; gymnax does not) and use the minimal action
set, so the numbers compare with gymnax-blines (PPO, 10M steps: Breakout 28,
Asterix 15, Freeway 58, SpaceInvaders 131), not with the MinAtar paper's.

Settings: gymnax-blines' MinAtar PPO (agents/<game>/ppo.yaml there): 64 environments
× 128 steps, 4 epochs of 8 minibatches, Adam 5e-4 held constant, global-norm clip 0.5,
γ 0.999, λ 0.95, clip 0.2, entropy 0.01, value coefficient 0.5, and an MLP of 2 × 256
ReLU units on the flattened 10×10×C observation (registered here as ``<game>-flat``
through ``jaxrl.envs.FlattenObservation``). gymnax-blines warms the learning rate up
over the first 5% of updates; jaxrl's PPO has no warm-up. The full budget is 10M steps
per game; where the machine allows less (``--steps``), the row records the budget and
the wall time it took.
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness.common import select_names
from benchmarks.harness.returns import Published, RunSpec, random_policy_return, run_spec

__all__ = ["GAMES", "PPO_MINATAR", "register_flat", "run_suite"]

GAMES = {
    "Breakout-MinAtar": 28.0,
    "Asterix-MinAtar": 15.0,
    "Freeway-MinAtar": 58.0,
    "SpaceInvaders-MinAtar": 131.0,
}
SOURCE = "gymnax-blines PPO (no sticky actions)"
FULL_STEPS = 10_000_000

NOTES = [
    "gymnax MinAtar: no sticky actions, minimal action sets. gymnax-blines' numbers are "
    f"evaluation returns at {FULL_STEPS // 1_000_000}M steps. Rows run since 2026-12-07 "
    "also evaluate the deterministic policy (argmax) after training and are judged on that; "
    "the older rows have training returns only."
]

PPO_MINATAR = dict(
    torso="mlp",
    hidden_sizes=(256, 256),
    activation="relu",
    num_envs=64,
    num_steps=128,
    num_epochs=4,
    num_minibatches=8,
    learning_rate=5e-4,
    anneal_lr=False,
    max_grad_norm=0.5,
    gamma=0.999,
    gae_lambda=0.95,
    clip_eps=0.2,
    ent_coef=0.01,
    vf_coef=0.5,
)


def _flat_factory(game: str):
    def factory(**kwargs):
        from jaxrl import envs

        env, params = envs.make(game, **kwargs)
        return envs.FlattenObservation(env), params

    return factory


def register_flat() -> None:
    """Registers ``<game>-flat`` (flattened observations) for each game, once."""
    from jaxrl import envs

    for game in GAMES:
        if f"{game}-flat" not in envs.registered_envs():
            envs.register(f"{game}-flat", _flat_factory(game))


def spec(game: str, steps: int, seeds: int) -> RunSpec:
    """The returns-suite run of PPO on ``game`` for ``steps`` environment steps."""
    register_flat()
    return RunSpec(
        name=f"ppo-{game}",
        algo="ppo",
        env_id=f"{game}-flat",
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
    on_row=None,
) -> tuple[list[dict], dict[str, Any]]:
    """PPO on the selected games; quick: 2 updates × 2 seeds, full: ``steps`` (10M) × 5 seeds."""
    games = select_names(list(GAMES), names)
    per_update = PPO_MINATAR["num_envs"] * PPO_MINATAR["num_steps"]
    steps = steps or (2 * per_update if quick else FULL_STEPS)
    n = seeds or (2 if quick else 5)
    rows, randoms = [], {}
    for game in games:
        log(f"[minatar] {game}: {steps:,} steps × {n} seeds")
        try:
            row = run_spec(spec(game, steps, n), quick=False, seeds=n)
        except Exception as e:  # one broken game must not cost the others
            log(f"[minatar] {game}: FAILED: {type(e).__name__}: {e}")
            continue
        s = row["final_return"]
        log(
            f"[minatar] {game}: IQM {s['iqm']}, mean {s['mean']} | "
            f"compile {row['compile_s']:.1f} s, run {row['run_s']:.1f} s"
        )
        rows.append(row)
        row["game"] = game
        randoms[row["env_id"]] = random_policy_return(game, 16, 200 if quick else 3_000)
        if on_row is not None:
            on_row(row, {"random_returns": randoms, "suite_notes": NOTES})
    return rows, {"random_returns": randoms, "suite_notes": NOTES}
