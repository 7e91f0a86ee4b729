"""What every suite shares: where results go, provenance, timing, and the suite JSON.

A suite writes ``<out>/<suite>.json``::

    {"suite": "returns", "mode": "full" | "quick",
     "provenance": {machine, versions, git commit, start/end time, wall_s, load average},
     "rows": [{"name": ..., ...numbers..., "provenance": {commit, time, load}}, ...],
     "notes": [...]}

Rows are keyed by ``name``. A run of part of a suite (``--only``) replaces its rows
and keeps the others, each row keeping the provenance of the run that made it, so a
long suite can be completed piece by piece. Full runs go to ``benchmarks/results``
(committed); ``--quick`` runs go to ``benchmarks/out`` (ignored by git) unless
``--out`` says otherwise.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "BENCH_DIR",
    "BenchmarkArgumentError",
    "OUT_DIR",
    "REPO_DIR",
    "RESULTS_DIR",
    "Timed",
    "default_out",
    "git_commit",
    "load_example",
    "load_suite",
    "merge_rows",
    "provenance",
    "row_provenance",
    "save_suite",
    "select_names",
    "time_compiled",
    "time_train",
]

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
OUT_DIR = BENCH_DIR / "out"

# A 2-core machine shared with other jobs: a 1-minute load average above this is
# flagged in the report as "under load" (timings noisy, learning results unaffected).
LOADED_ABOVE = 2.5


class BenchmarkArgumentError(ValueError):
    """A bad command-line value (an unknown row name, a budget out of range)."""


def select_names(known: list[str], names: list[str] | None) -> list[str]:
    """The known names matching ``names`` (exact names or substrings); all when None.

    Raises BenchmarkArgumentError naming what matched nothing and the known names.
    """
    if not names:
        return list(known)
    unknown = [n for n in names if not any(n == k or n in k for k in known)]
    if unknown:
        raise BenchmarkArgumentError(f"unknown row(s) {unknown}; known: {', '.join(known)}")
    return [k for k in known if any(n == k or n in k for n in names)]


def default_out(quick: bool) -> Path:
    """``benchmarks/out`` for ``--quick`` runs, ``benchmarks/results`` for full ones."""
    return OUT_DIR if quick else RESULTS_DIR


def git_commit() -> dict[str, Any]:
    """The commit of the working tree and whether files differ from it."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(status)}


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("jax", "jaxlib", "flax", "optax", "gymnax", "distrax", "flashbax", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def row_provenance() -> dict[str, Any]:
    """Commit, time and load average of one measurement (kept with its row)."""
    return {
        **git_commit(),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def provenance() -> dict[str, Any]:
    """The machine, the versions, the commit and the load: for a suite's JSON."""
    from jaxrl.run.rundir import machine_info

    info = machine_info()
    info["node_cpu"] = platform.processor() or platform.machine()
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        info["cpu_affinity"] = os.cpu_count()
    return {**info, "versions": _versions(), **row_provenance()}


def load_example(name: str):
    """Imports ``examples/<name>.py`` as a module (examples/ is not a package)."""
    import importlib.util

    path = REPO_DIR / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_jaxrl_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_suite(path: Path) -> dict[str, Any] | None:
    """The suite JSON at ``path``, or None if there is none."""
    path = Path(path)
    if not path.exists():
        return None
    with open(path) as f:
        return json.load(f)


def merge_rows(old: Iterable[dict], new: Iterable[dict]) -> list[dict]:
    """``old`` rows with those of the same ``name`` replaced by ``new`` (new ones appended)."""
    new = list(new)
    fresh = {r["name"] for r in new}
    return [r for r in old if r["name"] not in fresh] + new


def save_suite(
    out_dir: Path,
    suite: str,
    quick: bool,
    rows: list[dict],
    started: float,
    notes: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
    merge: bool = True,
) -> Path:
    """Writes ``out_dir/<suite>.json``, merging with rows already there when ``merge``.

    Args:
      out_dir: folder of the suite JSONs.
      suite: the suite's name.
      quick: the mode; rows of a different mode are never merged.
      rows: this run's rows (each a dict with a unique ``name``).
      started: ``time.time()`` when this run began (its wall time is recorded).
      notes: sentences for the report (replacing earlier ones when given).
      extra: more top-level entries (e.g. per-environment random-policy scores), merged
        key by key into those already there.

    Returns:
      the path written.
    """
    from jaxrl.run.rundir import write_json

    path = Path(out_dir) / f"{suite}.json"
    mode = "quick" if quick else "full"
    old = load_suite(path) if merge else None
    if old is not None and old.get("mode") != mode:
        old = None
    wall = time.time() - started
    runs = (old or {}).get("runs", [])
    # One entry per invocation: a later save of the same invocation replaces its entry.
    runs = [r for r in runs if r.get("started") != round(started, 3)]
    runs.append(
        {
            "rows": [r["name"] for r in rows],
            "started": round(started, 3),
            "wall_s": round(wall, 1),
            **row_provenance(),
        }
    )
    data = {
        "suite": suite,
        "mode": mode,
        "provenance": provenance(),
        "rows": merge_rows((old or {}).get("rows", []), rows),
        "notes": list(notes) or (old or {}).get("notes", []),
        "runs": runs,
    }
    for key, value in (old or {}).items():
        data.setdefault(key, value)  # entries other scripts keep here (ppo_profile.py's)
    for key, value in (extra or {}).items():
        prev = (old or {}).get(key)
        data[key] = (
            {**prev, **value} if isinstance(prev, dict) and isinstance(value, dict) else value
        )
    write_json(path, data)
    return path


class Timed(NamedTuple):
    """Output of :func:`time_compiled`."""

    output: Any  # the program's output, as NumPy arrays
    compile_s: float  # lowering and compiling
    run_s: float  # executing the compiled program (until its outputs are on the host)


def time_compiled(fn: Callable, *args) -> Timed:
    """Compiles ``jax.jit(fn)`` for ``args`` and runs it once, timing the two apart."""
    import jax

    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    out = jax.tree.map(np.asarray, out)
    return Timed(out, compile_s, time.perf_counter() - start)


def time_train(module, cfg, keys) -> tuple[dict, float, float]:
    """Trains ``len(keys)`` seeds of ``module`` at ``cfg``: ``(metrics, compile_s, run_s)``.

    ``train(key) = init(key) then num_updates × update`` (the algorithm contract), with
    the updates of all seeds in one ``jax.jit(jax.vmap(...))`` program. ``init`` runs
    for each seed on its own (jitted once): under a vmap over seeds the orthogonal
    initialisation becomes a batched LAPACK QR, which jaxlib 0.10.2 spreads over the
    CPU thread pool and which deadlocks when two such calls wait for the pool's only
    two threads (seen here as a hang in ``lapack_sorgqr_ffi`` / ``ParallelBatchMap``).
    The numbers are those of ``jax.vmap(make_train(cfg))``; the run time covers the
    updates, the compile time both programs.

    Returns:
      metrics as NumPy arrays ``[S, U, ...]``, compile seconds, run seconds.
    """
    import jax
    import jax.numpy as jnp

    agent = module.make_agent(cfg)

    def run(state):
        return jax.lax.scan(lambda s, _: agent.update(s, cfg), state, None, agent.num_updates)

    start = time.perf_counter()
    init = jax.jit(agent.init).lower(keys[0], cfg).compile()
    states = [init(k, cfg) for k in keys]
    state = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    if len(keys) == 1:  # as jaxrl.run.run_seeds: unbatched, not a vmap of size 1

        def one(state):
            return jax.tree.map(lambda x: x[None], run(jax.tree.map(lambda x: x[0], state)))

        compiled = jax.jit(one).lower(state).compile()
    else:
        compiled = jax.jit(jax.vmap(run)).lower(state).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(state)
    metrics = jax.tree.map(np.asarray, jax.block_until_ready(metrics))
    return metrics, compile_s, time.perf_counter() - start
