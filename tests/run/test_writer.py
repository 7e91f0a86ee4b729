"""RunWriter writes LLM stage run directories too (one writer for `jaxrl train` and `jaxrl llm`)."""

import json

import numpy as np

from jaxrl.run import rundir
from jaxrl.run.writer import RunWriter


def test_an_llm_stage_goes_through_the_run_writer(tmp_path):
    writer = RunWriter.for_stage(tmp_path / "sft", "sft", seed=3)
    metrics = {"loss": np.array([2.0, 1.5, 1.25], np.float32), "step_time": np.ones(3)}
    evals = {"step": np.array([0, 3]), "accuracy": np.array([0.25, 0.5])}
    writer.write_stage_partial({k: v[:2] for k, v in metrics.items()})  # stopped after 2
    assert sorted(p.name for p in (tmp_path / "sft").iterdir()) == ["metrics.csv"]
    assert len(rundir.read_metrics_csv(tmp_path / "sft" / "metrics.csv")) == 2
    writer.write_stage(metrics, evals, {"accuracy": 0.5, "before_accuracy": 0.25})
    names = sorted(p.name for p in (tmp_path / "sft").iterdir())
    assert names == ["curves.png", "evals.csv", "metrics.csv", "summary.json"]  # no temp files
    rows = rundir.read_metrics_csv(tmp_path / "sft" / "metrics.csv")
    assert [(r["update"], float(r["loss"])) for r in rows] == [("1", 2.0), ("2", 1.5), ("3", 1.25)]
    assert (tmp_path / "sft" / "evals.csv").read_text().splitlines()[1:] == ["0.25,0", "0.5,3"]
    assert json.loads((tmp_path / "sft" / "summary.json").read_text())["accuracy"] == 0.5
    RunWriter.for_stage(None, "sft", 0).write_stage(metrics, evals, {})  # no directory: nothing
