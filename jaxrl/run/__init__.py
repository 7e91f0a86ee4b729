"""Running experiments: sweeps × seeds in one vmapped program, sharded over devices,
in chunks with checkpoints, written to a run directory with statistics and figures."""

from jaxrl.run import stats
from jaxrl.run.checkpoint import Checkpointer
from jaxrl.run.experiment import (
    NonFiniteError,
    RunInterrupted,
    RunResult,
    make_chunk_fn,
    run_seeds,
    seed_keys,
    stack_configs,
)
from jaxrl.run.stats import bootstrap_ci, final_returns, iqm, summarize
from jaxrl.run.train import SweepResult, expand_grid, sweep, train
from jaxrl.run.writer import RunWriter

__all__ = [
    "Checkpointer",
    "NonFiniteError",
    "RunInterrupted",
    "RunResult",
    "RunWriter",
    "SweepResult",
    "bootstrap_ci",
    "expand_grid",
    "final_returns",
    "iqm",
    "make_chunk_fn",
    "run_seeds",
    "seed_keys",
    "stack_configs",
    "stats",
    "summarize",
    "sweep",
    "train",
]
