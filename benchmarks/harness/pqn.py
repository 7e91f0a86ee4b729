"""PQN against DQN on CartPole-v1: the wall time each needs to reach the same return.

The returns suite holds both rows (``pqn-CartPole-v1``, ``dqn-CartPole-v1``): 5 seeds
in one vmapped program each, compile and run timed apart. This module reads a row's
learning curve (IQM over seeds per window of updates, ``curve_band``) and its run
time, and takes the time to a return as the run time up to the first window whose IQM
reaches it (updates take equal time, so time is proportional to steps)::

    python -m benchmarks returns --only pqn-CartPole-v1      # trains PQN, 5 seeds
    python -m benchmarks.harness.pqn                         # compares with the DQN row

Both rows must come from a machine under a similar load (their ``provenance.load_avg``
is printed beside them): on the shared 2-core machine a load of 18 slows a run 5-10×.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from benchmarks.harness.common import RESULTS_DIR

__all__ = ["PQN_CARTPOLE", "compare", "main", "time_to_return"]

#: The PQN row's settings: the Config defaults (32 envs × 64 steps, 4 epochs × 16
#: minibatches, lr 3e-4 decayed to 0, rewards × 0.1) at 150k steps.
PQN_CARTPOLE = {"total_timesteps": 150_000}


def time_to_return(row: dict[str, Any], threshold: float) -> dict[str, Any] | None:
    """Steps and run seconds until the IQM over seeds first reaches ``threshold``.

    Returns:
      ``{"steps", "run_s", "run_plus_compile_s"}``, or None if the curve never gets there.
    """
    curve = row["curve"]
    for steps, iqm in zip(curve["steps"], curve["iqm"], strict=True):
        if iqm is not None and iqm >= threshold:
            run_s = row["run_s"] * steps / row["total_timesteps"]
            return {
                "steps": steps,
                "run_s": run_s,
                "run_plus_compile_s": run_s + row["compile_s"],
            }
    return None


def compare(rows: list[dict[str, Any]], threshold: float = 475.0) -> dict[str, Any]:
    """Time to ``threshold`` of the PQN and the DQN CartPole rows, and their ratio."""
    by_name = {r["name"]: r for r in rows}
    out: dict[str, Any] = {"threshold": threshold}
    for name in ("pqn-CartPole-v1", "dqn-CartPole-v1"):
        row = by_name.get(name)
        if row is None:
            out[name] = None
            continue
        out[name] = {
            "time_to_threshold": time_to_return(row, threshold),
            "final_iqm": row["final_return"]["iqm"],
            "seeds": row["seeds"],
            "run_s": row["run_s"],
            "compile_s": row["compile_s"],
            "load_avg": row.get("provenance", {}).get("load_avg"),
        }
    p, d = out.get("pqn-CartPole-v1"), out.get("dqn-CartPole-v1")
    if p and d and p["time_to_threshold"] and d["time_to_threshold"]:
        out["ratio_run_s"] = p["time_to_threshold"]["run_s"] / d["time_to_threshold"]["run_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    path = RESULTS_DIR / "returns.json"
    rows = json.loads(path.read_text())["rows"]
    print(json.dumps(compare(rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
