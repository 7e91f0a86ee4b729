"""Where PPO's run time goes, jaxrl beside rejax 0.1.3, by varying the number of epochs.

    python benchmarks/ppo_profile.py              # epochs 1, 2, 4; 2 alternating rounds

At rejax's settings (benchmarks/ppo_speed.py: CartPole-v1, 500k steps, 16 envs x 128 steps,
4 minibatches, (64, 64) tanh MLPs, one seed) each implementation runs with 1, 2 and 4 epochs,
each run in a fresh process, jaxrl and rejax alternating. Run time (after compiling) is linear
in the epochs: ``run_s = fixed_s + epochs * per_epoch_s``, fitted by least squares to the
medians. ``per_epoch_s`` is one pass of the gradient steps over every update's batch (4
minibatch steps per update, 244 updates); ``fixed_s`` is what does not depend on the epochs:
the rollouts (environment steps and the policy's forward pass), the advantages and the loop.
The result goes into benchmarks/results/speed.json (key ``ppo_profile``), which the speed
section of RESULTS.md shows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.ppo_speed import SETTINGS, run_one  # noqa: E402

EPOCHS = (1, 2, 4)


def fit(rows: list[dict]) -> dict[str, float]:
    """Least-squares ``run_s = fixed_s + epochs * per_epoch_s`` over the per-epochs medians."""
    epochs = sorted({r["num_epochs"] for r in rows})
    med = [statistics.median(r["run_s"] for r in rows if r["num_epochs"] == e) for e in epochs]
    per_epoch, fixed = np.polyfit(np.asarray(epochs, float), np.asarray(med), 1)
    resid = np.asarray(med) - (fixed + per_epoch * np.asarray(epochs, float))
    return {
        "fixed_s": float(fixed),
        "per_epoch_s": float(per_epoch),
        "max_residual_s": float(np.abs(resid).max()),
        "median_run_s": dict(zip(map(str, epochs), med, strict=True)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=HERE / "results" / "speed.json")
    args = p.parse_args()
    rows = []
    loads = [os.getloadavg()[0]]
    for r in range(args.rounds):
        for epochs in EPOCHS:
            for impl in ("jaxrl", "rejax"):
                row = {**run_one(impl, 1, epochs), "round": r}
                rows.append(row)
                loads.append(os.getloadavg()[0])
                print(json.dumps(row), flush=True)
    fits = {impl: fit([r for r in rows if r["impl"] == impl]) for impl in ("jaxrl", "rejax")}
    data = json.loads(args.out.read_text())
    data["ppo_profile"] = {
        "settings": SETTINGS,
        "epochs": list(EPOCHS),
        "rounds": args.rounds,
        "rows": rows,
        "fit": fits,
        "load_1min": [min(loads), max(loads)],
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python benchmarks/ppo_profile.py",
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    for impl, f in fits.items():
        print(
            f"{impl}: fixed {f['fixed_s']:.2f} s + {f['per_epoch_s']:.2f} s per epoch "
            f"(largest residual {f['max_residual_s']:.2f} s)"
        )


if __name__ == "__main__":
    main()
