"""Running experiments: seeds in one vmapped program, chunks, run directories, statistics."""

from jaxrl.run import stats
from jaxrl.run.experiment import RunResult, make_chunk_fn, run_seeds, seed_keys
from jaxrl.run.stats import bootstrap_ci, final_returns, iqm, summarize
from jaxrl.run.train import train

__all__ = [
    "RunResult",
    "bootstrap_ci",
    "final_returns",
    "iqm",
    "make_chunk_fn",
    "run_seeds",
    "seed_keys",
    "stats",
    "summarize",
    "train",
]
