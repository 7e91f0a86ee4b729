"""The returns table judges a row on its deterministic evaluation when it has one."""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness import report_returns
from tests.test_benchmarks import _fake_returns_row, _summary

PUBLISHED = {"value": -172.0, "spread": 3.0, "source": "SB3 zoo"}


def _row(eval_per_seed=None):
    row = _fake_returns_row(
        "ppo-Pendulum-v1", "ppo", "Pendulum-v1", [-260.0, -250.0, -255.0, -240.0, -245.0],
        PUBLISHED, target={"value": -200.0}, steps=100_000,
    )  # fmt: skip
    if eval_per_seed is not None:
        row["eval_return"] = _summary(eval_per_seed)
    return row


def _line(row) -> str:
    data = {"rows": [row], "random_returns": {"Pendulum-v1": {"mean": -1200.0}}}
    lines = report_returns.returns_like_md(data, Path("figures"), "returns")
    return next(line for line in lines if line.startswith("| ppo-Pendulum-v1"))


def test_a_row_with_an_evaluation_is_judged_on_it():
    line = _line(_row([-170.0, -160.0, -168.0, -165.0, -175.0]))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3] == "-250.0 ± 7.9"  # training mean ± std (ddof 1)
    assert cells[5].startswith("-167.7 [")  # evaluation IQM of the middle three seeds
    assert cells[7] == "evaluation"
    assert cells[8] == "meets (IQM -167.7 ≥ -172 − 3)"
    assert cells[9] == "✓ ≥ -200"


def test_a_row_without_an_evaluation_is_judged_on_training_and_says_so():
    line = _line(_row())
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[5] == "–" and cells[7] == "training"
    assert cells[8].startswith("short by 75.0")  # IQM -250 vs the bar -175
    assert cells[9] == "✗ ≥ -200"
    assert report_returns.judged(_row())[1] == "training"
    assert report_returns.judged(_row([-1.0] * 5))[1] == "evaluation"
