"""Text grids, heatmaps, greedy paths and the ``solve`` entry point."""

from __future__ import annotations

import numpy as np
import pytest

from jaxrl.tabular import (
    GridLayout,
    format_solution,
    greedy_path,
    make_task,
    policy_grid,
    save_heatmap,
    save_solution_heatmap,
    solve,
    value_grid,
)

LAYOUT = GridLayout(("SF", "HG"), ("←", "↓", "→", "↑"))


def test_value_grid_prints_numbers_and_tile_letters():
    text = value_grid([0.5, 1.25, 0.0, 0.0], LAYOUT, precision=2)
    assert text.splitlines() == ["0.50 1.25", "   H    G"]
    assert value_grid([1.0, -2.0, 3.5]) == " 1.00 -2.00  3.50"  # right-aligned columns


def test_policy_grid_prints_arrows():
    assert policy_grid([2, 1, 0, 0], LAYOUT).splitlines() == ["→ ↓", "H G"]
    with pytest.raises(ValueError, match=r"`layout` has 2×2 = 4 cells but there are 5 states"):
        policy_grid([0] * 5, LAYOUT)


def test_solve_cliff_walking_and_its_greedy_path():
    solution = solve("value-iteration", "CliffWalking")
    assert solution.start_value == -13.0 and solution.time_limited_return == -13.0
    path = greedy_path(solution.task.mdp, solution.result.policy)
    # Up, along the edge of the cliff, down: 13 steps.
    assert path == [36, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 47]
    # A policy that walks into the top wall stops at the first repeated state.
    up = np.zeros(48, int)
    assert greedy_path(solution.task.mdp, up) == [36, 24, 12, 0, 0]
    text = format_solution(solution)
    assert "V*(start) = -13.0000" in text
    assert text.splitlines()[-4] == "↑ C C C C C C C C C C G"


def test_solve_frozen_lake_by_both_methods(tmp_path):
    vi = solve("value-iteration", "FrozenLake-4x4", gamma=0.95, tol=1e-7)
    pi = solve("policy-iteration", "FrozenLake-4x4", gamma=0.95)
    np.testing.assert_allclose(vi.result.values, pi.result.values, atol=1e-5)
    assert vi.gamma == pytest.approx(0.95)
    written = save_solution_heatmap(vi, tmp_path / "sub" / "v.png")
    with open(written, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    other = save_heatmap(np.arange(4.0), None, tmp_path / "row.png", policy=[0, 1, 0, 1])
    assert (tmp_path / "row.png").stat().st_size > 1000 and other.endswith("row.png")


def test_solve_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"unknown method 'sarsa'.*value-iteration"):
        solve("sarsa", "CliffWalking")
    with pytest.raises(ValueError, match=r"unknown tabular environment 'Cliff'"):
        solve("value-iteration", "Cliff")
    with pytest.raises(ValueError, match=r"`gamma` must be in \[0, 1\]"):
        solve("value-iteration", "CliffWalking", gamma=2.0)


def test_every_task_renders():
    for name in ("FrozenLake-8x8", "WindyGridworld", "MaximizationBias"):
        task = make_task(name)
        values = np.zeros(task.mdp.num_states)
        assert len(value_grid(values, task.layout).splitlines()) == task.layout.shape[0]


def test_public_names_have_docstrings():
    import jaxrl.tabular as tabular

    constants = {"FROZEN_LAKE_MAPS", "TABULAR_ENVS", "ALGORITHMS", "TABULAR_AGENTS", "SOLVERS"}
    for name in tabular.__all__:
        if name not in constants:
            assert getattr(tabular, name).__doc__, name
