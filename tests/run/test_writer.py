"""RunWriter writes every run directory: `jaxrl train`, `jaxrl llm STAGE` and `jaxrl solve`."""

import json

import numpy as np
import pytest

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
    writer.write_config({"stage": "sft", "seed": 3, "config": {"learning_rate": 1e-3}})
    config = json.loads((tmp_path / "sft" / "config.json").read_text())
    assert config == {"stage": "sft", "seed": 3, "config": {"learning_rate": 1e-3}}


def test_a_solution_goes_through_the_run_writer(tmp_path):
    from jaxrl.tabular import solve

    solution = solve("policy-iteration", "FrozenLake-4x4", gamma=0.9)
    out = tmp_path / "pi"
    RunWriter.for_solution(out, "policy-iteration", "FrozenLake-4x4").write_solution(solution, 1e-5)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "summary.json", "values.png"]
    config = json.loads((out / "config.json").read_text())
    assert {k: config[k] for k in ("method", "env", "tol")} == {
        "method": "policy-iteration",
        "env": "FrozenLake-4x4",
        "tol": 1e-5,
    }
    assert config["gamma"] == pytest.approx(0.9)  # the solver's float32 γ, as written before
    summary = json.loads((out / "summary.json").read_text())
    r = solution.result
    assert summary["policy"] == np.asarray(r.policy).tolist()
    assert np.shape(summary["q_values"]) == (16, 4) and summary["iterations"] == int(r.iterations)
    # V* is the greedy action's Q*, state by state.
    q = np.asarray(summary["q_values"])
    np.testing.assert_allclose(summary["values"], q[np.arange(16), summary["policy"]], atol=1e-5)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        RunWriter.for_solution(tmp_path / "afile", "policy-iteration", "x").write_solution(
            solution, 1e-5
        )
    RunWriter.for_solution(None, "policy-iteration", "x").write_solution(solution, 1e-5)
