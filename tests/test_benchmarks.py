"""The benchmark harness: statistics by hand, the report on fake JSON, a quick suite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness import common, figures, report, report_suites, stats
from benchmarks.harness.cli import main

# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1.0, 2.0, 3.0, 4.0], 2.5),  # middle two of four
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 4.5),  # (3 + 4 + 5 + 6) / 4
        ([0, 0, 0, 10, 10, 10, 10, 1000], 7.5),  # (0 + 10 + 10 + 10) / 4: outlier gone
        # n = 5: keep [1.25, 3.75) of the sorted ranks: ¾·2 + 3 + ¾·4 over 2.5 = 3.
        ([100.0, 4.0, 1.0, 3.0, 2.0], 3.0),
        ([7.0], 7.0),
    ],
)
def test_iqm_hand_computed(values, expected):
    assert stats.iqm(values) == pytest.approx(expected)


def test_stratified_bootstrap_keeps_each_task_apart():
    # Every replicate draws three scores from each task: the pooled mean is always 0.5.
    lo, hi = stats.stratified_bootstrap_ci({"a": [0, 0, 0], "b": [1, 1, 1]}, np.mean)
    assert (lo, hi) == (0.5, 0.5)
    # Pooling the six scores into one stratum lets a replicate hold more zeros than ones.
    lo, hi = stats.stratified_bootstrap_ci([np.array([0, 0, 0, 1, 1, 1])], np.mean)
    assert lo < 0.5 < hi


def test_bootstrap_interval_matches_enumeration():
    # Task a = [0, 1] resampled twice: sum 0, 1, 2 with probabilities ¼, ½, ¼; task b = [10]
    # is fixed. The pooled mean (a₁ + a₂ + 10) / 3 has ¼ of its mass at 10/3 and ¼ at 4, so
    # the 2.5% and 97.5% percentiles are exactly those values.
    reps = stats.bootstrap_replicates([[0.0, 1.0], [10.0]], np.mean, num_resamples=20_000)
    values, counts = np.unique(np.round(reps * 3), return_counts=True)
    assert values.tolist() == [10.0, 11.0, 12.0]
    freq = counts / reps.size
    se = math.sqrt(0.25 * 0.75 / reps.size)
    assert freq == pytest.approx([0.25, 0.5, 0.25], abs=5 * se)
    lo, hi = stats.stratified_bootstrap_ci([[0.0, 1.0], [10.0]], np.mean, num_resamples=4_000)
    assert lo == pytest.approx(10 / 3) and hi == pytest.approx(4.0)


def test_bootstrap_is_reproducible_and_checks_input():
    a = stats.stratified_bootstrap_ci([1.0, 5.0, 2.0, 8.0, 3.0], seed=3)
    assert a == stats.stratified_bootstrap_ci([1.0, 5.0, 2.0, 8.0, 3.0], seed=3)
    with pytest.raises(ValueError, match="confidence"):
        stats.stratified_bootstrap_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="task 1 has no finite score"):
        stats.bootstrap_replicates([[1.0], [np.nan]])


def test_summarize_scores_hand_case():
    s = stats.summarize_scores([4.0, 1.0, np.nan, 3.0, 2.0])
    assert s["n"] == 4 and s["n_dropped"] == 1
    assert s["mean"] == pytest.approx(2.5)
    assert s["std"] == pytest.approx(math.sqrt(5 / 3))  # Σ(x − 2.5)² = 5, ddof 1
    assert s["iqm"] == pytest.approx(2.5)
    assert 1.0 <= s["iqm_ci95"][0] <= 2.5 <= s["iqm_ci95"][1] <= 4.0
    assert stats.summarize_scores([np.nan])["iqm"] is None


def test_normalized_score_and_forward_fill():
    assert stats.normalized_score([20.0, 500.0], random=20.0, reference=500.0).tolist() == [0, 1]
    assert stats.normalized_score(-600.0, random=-1200.0, reference=-150.0) == pytest.approx(
        600 / 1050
    )
    with pytest.raises(ValueError, match="equals random"):
        stats.normalized_score(1.0, 3.0, 3.0)
    filled = stats.forward_fill([[np.nan, 1.0, np.nan, 3.0, np.nan], [2.0, np.nan, 5.0, 6.0, 7.0]])
    np.testing.assert_array_equal(filled, [[np.nan, 1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 5.0, 6.0, 7.0]])


def test_curve_band_windows():
    # Three runs, six updates of 10 steps; windows of two updates -> three points.
    values = np.array([[1, 1, 2, 2, 3, np.nan], [1, 1, 2, 2, 3, 3], [4, 4, 5, 5, 6, 6.0]])
    c = stats.curve_band(values, steps_per_update=10, max_points=3)
    assert c["steps"] == [20, 40, 60]
    assert c["mean"] == pytest.approx([2.0, 3.0, 4.0])
    # IQM of three values [a, a, b] keeps weights ¼, 1, ¼ over [0.75, 2.25): (¼a + a + ¼b)/1.5.
    assert c["iqm"] == pytest.approx([(1.25 + 1) / 1.5, (2.5 + 1.25) / 1.5, (3.75 + 1.5) / 1.5])
    assert all(lo <= m <= hi for lo, m, hi in zip(c["lo"], c["iqm"], c["hi"], strict=True))


# ---------------------------------------------------------------- report on fake JSON


def _summary(values):
    return stats.summarize_scores(values)


def _fake_returns_row(name, algo, env, per_seed, published, target=None, steps=500_000):
    return {
        "name": name,
        "algo": algo,
        "env_id": env,
        "total_timesteps": steps,
        "seeds": len(per_seed),
        "final_return": _summary(per_seed),
        "per_seed": per_seed,
        "curve": stats.curve_band(np.array([per_seed, per_seed]).T * [0.5, 1.0], steps // 2),
        "published": published,
        "target": target,
        "compile_s": 1.5,
        "run_s": 2.5,
        "provenance": {"load_avg": [0.5, 0.5, 0.5]},
    }


def _write_fake_results(results):
    prov = {"commit": "abc123def456", "dirty": False, "time": "2026-01-01T00:00:00+00:00"}
    prov.update(node_cpu="x86_64", cpu_count=2, backend="cpu", jax="0.10.2", jaxrl="0.1.0")
    returns = {
        "suite": "returns",
        "mode": "full",
        "provenance": prov,
        "rows": [
            _fake_returns_row(
                "ppo-CartPole-v1", "ppo", "CartPole-v1", [500.0] * 5,
                {"value": 490.0, "spread": 6.0, "source": "CleanRL", "budget": 500_000},
                {"value": 475.0, "source": "issue"},
            ),
            _fake_returns_row(
                "dqn-CartPole-v1", "dqn", "CartPole-v1", [470.0, 480.0, 480.0, 480.0, 490.0],
                {"value": 500.0, "spread": 0.0, "source": "zoo", "budget": 100_000},
                {"value": 475.0, "source": "issue"},
            ),
        ],
        "notes": ["a note"],
        "runs": [{"rows": ["ppo-CartPole-v1"], "wall_s": 600.0, "time": prov["time"]},
                 {"rows": ["dqn-CartPole-v1"], "wall_s": 300.0, "time": prov["time"]}],
        "random_returns": {"CartPole-v1": {"mean": 20.0}},
    }  # fmt: skip

    def speed_row(impl, algo, seeds, run_s, r):
        return {
            "name": f"algo/{algo}/{impl}/seeds={seeds}/round={r}",
            "kind": "algo", "algo": algo, "impl": impl, "env_id": "CartPole-v1",
            "seeds": seeds, "total_timesteps": 100_000, "compile_s": 2.0, "run_s": run_s,
            "steps_per_s": seeds * 100_000 / run_s,
        }  # fmt: skip

    speed_rows = [
        speed_row("jaxrl", "ppo", 1, 1.0, 0), speed_row("rejax", "ppo", 1, 2.0, 0),
        speed_row("jaxrl", "ppo", 1, 3.0, 1), speed_row("rejax", "ppo", 1, 2.0, 1),
        speed_row("jaxrl", "ppo", 1, 2.0, 2), speed_row("rejax", "ppo", 1, 4.0, 2),
        speed_row("jaxrl", "dqn", 1, 10.0, 0), speed_row("rejax", "dqn", 1, 50.0, 0),
        {"name": "env_limit/CartPole-v1/envs=16", "kind": "env_limit", "env_id": "CartPole-v1",
         "num_envs": 16, "total_timesteps": 100_000, "compile_s": 0.1, "run_s": 0.1,
         "steps_per_s": 1e6},
    ]  # fmt: skip
    speed = {
        "suite": "speed",
        "mode": "full",
        "provenance": prov,
        "rows": speed_rows,
        "runs": [{"rows": [], "wall_s": 120.0, "time": prov["time"]}],
        "settings": {"ppo": {"jaxrl": {"num_envs": 16}}, "dqn": {"jaxrl": {"num_envs": 1}}},
    }
    results.mkdir(parents=True)
    (results / "returns.json").write_text(json.dumps(returns))
    (results / "speed.json").write_text(json.dumps(speed))


def test_verdict_texts():
    pub = {"value": 490.0, "spread": 6.0}
    assert report.verdict(_summary([484.0] * 5), pub).startswith("meets")
    text = report.verdict(_summary([440.0] * 5), pub, random=20.0)
    assert text == "short by 44.0, 9% of the random→published range"  # 484 − 440; 44 / 470
    # The IQM falls short but its interval reaches the bar.
    assert report.verdict(_summary([400.0, 480.0, 480.0, 490.0, 600.0]), pub).endswith(
        "(95% CI reaches it)"
    )
    assert report.verdict(_summary([1.0]), None) == "no published number"


def test_speed_summary_medians_and_ratios():
    data = {
        "rows": [
            {"kind": "algo", "algo": "ppo", "impl": i, "env_id": "E", "seeds": 1,
             "total_timesteps": 10, "compile_s": 1.0, "run_s": r, "steps_per_s": 10 / r}
            for i, r in [("jaxrl", 1.0), ("jaxrl", 3.0), ("jaxrl", 2.0), ("rejax", 4.0),
                         ("rejax", 4.0), ("rejax", 5.0)]
        ],
        "settings": {},
    }  # fmt: skip
    (e,) = report_suites.speed_summary(data)
    assert e["jaxrl"]["run_s"] == 2.0 and e["rejax"]["run_s"] == 4.0
    assert e["run_ratio"] == pytest.approx(0.5)
    assert e["speedup"] == pytest.approx(5.0 / 2.5)  # medians of 10/r: 5 and 2.5
    assert report_suites._target_text(e).startswith("✓ run ratio ≤ 0.8")


def test_report_from_fake_json(tmp_path):
    results = tmp_path / "results"
    _write_fake_results(results)
    readme_path = tmp_path / "README.md"
    marked = f"# x\n\n{report.README_START}\nold\n{report.README_END}\n\n## after\n"
    readme_path.write_text(marked)
    written = report.write_report(results)
    text = (tmp_path / "RESULTS.md").read_text()
    assert written == [tmp_path / "RESULTS.md", readme_path]
    assert report.GENERATED in text
    ppo_line = next(line for line in text.splitlines() if line.startswith("| ppo-CartPole-v1"))
    assert "meets (IQM 500.0 ≥ 490 − 6)" in ppo_line and "✓ ≥ 475" in ppo_line
    dqn_line = next(line for line in text.splitlines() if line.startswith("| dqn-CartPole-v1"))
    # IQM of [470, 480, 480, 480, 490] is 480: 20 short of 500, 4% of the 480-point range.
    assert "short by 20.0, 4% of the random→published range" in dqn_line
    assert "budget differs: ours 500k" in dqn_line and "✓ ≥ 475" in dqn_line
    assert "Wall time of the full suites recorded here: 17.0 min." in text  # 600 + 300 + 120 s
    assert "> a note" in text
    # Speed: median jaxrl run 2.0 s vs rejax 2.0 s -> ratio 1.00, target missed; DQN 5×.
    ppo_speed = next(
        line for line in text.splitlines() if line.startswith("| ppo | CartPole-v1 (16)")
    )
    assert "| 1.00 |" in ppo_speed and "✗ run ratio ≤ 0.8 (is 1.00)" in ppo_speed
    assert "✗ ≥ 8× rejax (is 5.00×)" in text
    readme = readme_path.read_text()
    # The section replaced what lay between the markers; the rest of the README is kept.
    assert readme.startswith("# x\n\n") and readme.endswith(f"{report.README_END}\n\n## after\n")
    assert "old" not in readme and readme.count(report.README_START) == 1
    assert "[benchmarks/RESULTS.md](benchmarks/RESULTS.md)" in readme
    assert "| ppo | CartPole-v1 (500k) | 500.0 [500.0, 500.0] | training | 490 | meets" in readme
    for name in ("returns_curves.png", "returns_aggregate.png", "speed.png"):
        assert (results / "figures" / name).stat().st_size > 1000
    agg = figures.aggregate_scores(
        json.loads((results / "returns.json").read_text())["rows"], {"CartPole-v1": {"mean": 20.0}}
    )
    assert agg["ppo"]["iqm"] == pytest.approx((500 - 20) / (490 - 20))


def test_save_suite_merges_partial_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "provenance", lambda: {"commit": "x"})
    common.save_suite(tmp_path, "returns", False, [{"name": "a", "v": 1}, {"name": "b", "v": 2}], 0)
    common.save_suite(tmp_path, "returns", False, [{"name": "b", "v": 3}], 1, extra={"r": {"E": 1}})
    data = common.load_suite(tmp_path / "returns.json")
    assert data["rows"] == [{"name": "a", "v": 1}, {"name": "b", "v": 3}]
    assert len(data["runs"]) == 2 and data["r"] == {"E": 1}
    # An entry another script wrote (ppo_profile.py's) survives a later save of the suite.
    path = tmp_path / "returns.json"
    path.write_text(json.dumps({**data, "ppo_profile": {"fit": 1}}))
    common.save_suite(tmp_path, "returns", False, [{"name": "a", "v": 5}], 2)
    assert common.load_suite(path)["ppo_profile"] == {"fit": 1}
    # A quick run never mixes with full rows.
    common.save_suite(tmp_path, "returns", True, [{"name": "c", "v": 4}], 0)
    assert [r["name"] for r in common.load_suite(tmp_path / "returns.json")["rows"]] == ["c"]


# ---------------------------------------------------------------- the command


def test_quick_suite_end_to_end(tmp_path):
    """``tabular --quick`` restricted to its fastest row: value iteration on FrozenLake."""
    assert main(["tabular", "--quick", "--only", "frozenlake-vi", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "tabular.json").read_text())
    assert data["mode"] == "quick" and data["provenance"]["cpu_count"] >= 1
    (row,) = data["rows"]
    assert abs(row["FrozenLake-4x4"]["success_rate"] - 0.74) < 0.01
    assert row["checks"] == {"frozenlake_4x4_optimum": True}
    assert "| FrozenLake-4x4 (limit 100) |" in (tmp_path / "tabular.md").read_text()


def test_bad_row_name_exits_2(tmp_path, capsys):
    assert main(["tabular", "--quick", "--only", "no-such-row", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown row(s) ['no-such-row']" in err and "frozenlake-vi" in err


def test_time_train_equals_make_train_per_seed():
    """Per-seed init + one vmapped program of updates gives each seed's own ``train(key)``."""
    import jax

    from benchmarks.harness.common import time_train
    from jaxrl.agents import ppo

    cfg = ppo.Config(
        env_id="CartPole-v1", num_envs=2, num_steps=8, num_epochs=1, num_minibatches=1,
        hidden_sizes=(8,), total_timesteps=32,
    )  # fmt: skip
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    metrics, compile_s, run_s = time_train(ppo, cfg, keys)
    assert compile_s > 0 and run_s > 0
    train = jax.jit(ppo.make_train(cfg))
    for i, key in enumerate(keys):
        _, ref = train(key)
        assert set(ref) == set(metrics)
        for name, value in ref.items():
            np.testing.assert_allclose(metrics[name][i], value, rtol=1e-4, atol=1e-5)


def test_sweep_report_section():
    from benchmarks.harness import sweep

    def agents(devices, n, run_s):
        return {"name": f"agents/devices={devices}/n={n}", "kind": "agents", "agents": n,
                "steps": 1000, "devices": devices, "compile_s": 2.0, "run_s": run_s,
                "run_s_per_agent": run_s / n, "steps_per_s": n * 1000 / run_s}  # fmt: skip

    data = {
        "rows": [
            agents(1, 1, 2.0), agents(1, 8, 4.0), agents(4, 1, 3.0), agents(4, 8, 12.0),
            {"name": "checkpoint", "kind": "checkpoint", "steps": 500_000, "compile_s": 1.0,
             "chunks": 20, "run_s_off": 10.0, "run_s_on": 10.4, "runs_off": [10.0, 9.0],
             "runs_on": [10.4, 11.0]},
        ]
    }  # fmt: skip
    assert sweep.checkpoint_overhead(data) == pytest.approx(0.04)
    lines = sweep.sweep_md(data, None)
    # 8 agents on one device: 0.5 s each, a quarter of one agent's 2 s.
    assert "| 1 | 8 | 1,000 | 2.0 | 4.00 | 0.500 | 2,000 | 0.25 |" in lines
    assert "| 4 | 8 | 1,000 | 2.0 | 12.00 | 1.500 | 667 | 0.50 |" in lines
    assert "run s without/with: 10.00/10.40, 9.00/11.00)" in lines[-1]
    assert lines[-1].endswith("+4.0% (✓ target ≤ 5%).")
    (readme,) = [x for x in sweep.readme_lines(data) if x]
    assert "1 agent 2.000 s each; 8 agents 0.500 s each." in readme


def test_report_header_notes_loaded_rows_only():
    prov = {"cpu_count": 2, "commit": "abc", "time": "2026-01-01T00:00:00+00:00"}
    data = {
        "suite": "sweep",
        "mode": "full",
        "provenance": prov,
        "notes": ["The machine was under load (1-minute load average 9.0 on 2 cores) ...", "kept"],
        "rows": [
            {"provenance": {"load_avg": [5.5, 1, 1]}},
            {"provenance": {"load_avg": [1.2, 1, 1]}},
        ],
        "runs": [],
    }
    text = "\n".join(report._header(data))
    assert "> kept" in text and "9.0" not in text  # an old whole-suite load note is dropped
    assert "> 1 of 2 rows were measured at a 1-minute load average above 2.5 (up to 5.5" in text
    data["rows"][0]["provenance"]["load_avg"][0] = 1.0
    assert "rows were measured" not in "\n".join(report._header(data))


def test_wall_time_counts_only_invocations_whose_rows_remain():
    runs = [
        {"rows": ["a", "b"], "started": 1.0, "wall_s": 100.0},  # both rows redone later
        {"rows": ["a"], "started": 2.0, "wall_s": 10.0},
        {"rows": ["b", "c"], "started": 3.0, "wall_s": 20.0},
    ]
    live = report.live_runs({"runs": runs})
    assert [r["started"] for r in live] == [2.0, 3.0]
    assert report._wall({"runs": runs}) == 30.0


def test_speed_table_lists_the_cli_rows():
    """``jaxrl train`` at its defaults (``kind == "cli"`` rows) gets its own table: both ways
    of running four seeds side by side and whether one command was the faster."""
    from pathlib import Path

    from benchmarks.harness.report_suites import speed_md

    def cli(algo, one_by_one, run_s):
        return {
            "name": f"cli/{algo}/{one_by_one}", "kind": "cli", "algo": algo,
            "env_id": "Pendulum-v1", "seeds": 4, "one_by_one": one_by_one,
            "total_timesteps": 1000, "compile_s": 5.0, "run_s": run_s,
            "steps_per_s": 4000 / run_s,
        }  # fmt: skip

    data = {"rows": [cli("td3", False, 20.0), cli("td3", True, 10.0), cli("sac", False, 8.0)]}
    text = "\n".join(speed_md(data, Path("figures")))
    td3 = next(line for line in text.splitlines() if line.startswith("| td3 "))
    assert td3.endswith("| ✗ |") and "200" in td3 and "400" in td3
    sac = next(line for line in text.splitlines() if line.startswith("| sac "))
    assert sac.endswith("| – |") and "| – | – |" in sac


def test_speed_only_cli_rows_runs_just_those(monkeypatch):
    """``--only cli/td3 cli/ddpg`` measures only the user-defaults rows of TD3 and DDPG."""
    from benchmarks.harness import speed

    calls = []

    def fake(algo, steps, one_by_one):
        calls.append((algo, steps, one_by_one))
        return {"name": f"cli/{algo}/{one_by_one}", "kind": "cli", "run_s": 1.0, "steps_per_s": 1.0}

    monkeypatch.setattr(speed, "measure_cli", fake)
    rows, _ = speed.run_suite(True, ["cli/td3", "cli/ddpg"], log=lambda m: None)
    assert calls == [("td3", 2_000, False), ("td3", 2_000, True),
                     ("ddpg", 2_000, False), ("ddpg", 2_000, True)]  # fmt: skip
    assert [r["name"] for r in rows] == [f"cli/{a}/{b}/round=0" for a, _, b in calls]


# ---------------------------------------------------------------- llm_trl (jaxrl beside TRL)


def test_llm_trl_reward_is_the_same_formula_on_both_sides():
    from benchmarks import llm_trl, trl_side  # trl_side imports torch/trl only inside main

    for text in ("", "a", "aaaa", "12321", "hello world"):
        assert llm_trl.distinct_char_share(text) == trl_side.distinct_char_share(text)
    assert llm_trl.distinct_char_share("aab") == pytest.approx(2 / 3)


def test_llm_trl_rows_have_one_shape_and_the_task_scores_under_jit(tmp_path):
    import jax

    from benchmarks import llm_trl
    from jaxrl.llm.testing import tiny_model_dir

    model = tiny_model_dir(str(tmp_path / "model"))
    llm_trl.write_data(str(tmp_path), 6, prompt_digits=5, completion_digits=4, seed=0)
    pairs = llm_trl._pairs(model, llm_trl._read_jsonl(str(tmp_path / "pairs.jsonl")))
    # Digits are single tokens, so no row is padded: TRL's per-batch padding gives the
    # same [2b, P + C] input as jaxrl's fixed columns.
    assert pairs.prompt_tokens.shape == (6, 6)  # BOS + 5 digits
    assert pairs.chosen_tokens.shape == pairs.rejected_tokens.shape == (6, 5)  # 4 digits + EOS
    assert pairs.prompt_mask.all() and pairs.chosen_mask.all() and pairs.rejected_mask.all()
    rows = llm_trl._read_jsonl(str(tmp_path / "prompts.jsonl"))
    task, tok = llm_trl._bench_task(model, rows, completion_len=6)
    prompts = task.prompts("train", 3)
    assert prompts.mask.all() and task.eos_ids == (-1,)
    texts = ["aab", "quick", "11"]
    tokens = np.full((3, 6), tok.pad_id, np.int32)
    mask = np.zeros((3, 6), np.int32)
    for i, t in enumerate(texts):
        ids = tok.encode(t, add_special_tokens=False)
        tokens[i, : len(ids)], mask[i, : len(ids)] = ids, 1
    scores = jax.jit(task.score)(prompts, tokens, mask)
    np.testing.assert_allclose(scores, [2 / 3, 1.0, 0.5], rtol=1e-6)


def test_report_keeps_the_script_sections(tmp_path):
    """A report rerun renders the sections of the stand-alone LLM benchmark scripts from
    their results files (it dropped them before), and only where the file exists."""
    import shutil
    from pathlib import Path

    from benchmarks.harness import report

    src = Path(report.common.RESULTS_DIR) / "llm_trl.json"
    assert "## llm_trl" not in report.build_report(tmp_path)
    shutil.copy(src, tmp_path / "llm_trl.json")
    text = report.build_report(tmp_path)
    assert "## llm_trl" in text and "GRPO" in text.split("## llm_trl", 1)[1]


def test_readme_speed_lines_label_rejax_settings_and_give_the_cli_defaults():
    from benchmarks.harness.report_suites import readme_lines

    def cli(algo, one_by_one, steps_per_s):
        return {"kind": "cli", "algo": algo, "env_id": "Pendulum-v1", "total_timesteps": 5000,
                "one_by_one": one_by_one, "steps_per_s": steps_per_s}  # fmt: skip

    rows = [cli("td3", False, 380.0), cli("td3", False, 400.0), cli("td3", True, 340.4)]
    rows.append(cli("sac", False, 200.0))  # no one-by-one row: not a comparison, left out
    text = " ".join(readme_lines({"suite": "speed", "rows": rows}))
    assert "rejax's settings" in text
    assert "td3 Pendulum-v1 (5,000 steps per seed) 390 vs 340" in text  # median of 380, 400
    assert "sac" not in text


def test_ppo_profile_fits_fixed_plus_per_epoch_and_reports_it():
    from benchmarks.harness.report_suites import speed_md
    from benchmarks.ppo_profile import fit

    def row(impl, epochs, run_s):
        return {"impl": impl, "num_epochs": epochs, "run_s": run_s}

    jaxrl = [row("jaxrl", e, 1.0 + 0.75 * e + d) for e in (1, 2, 4) for d in (0.0, 0.2, -0.2)]
    f = fit(jaxrl)  # medians over rounds: the ±0.2 rounds cancel
    assert abs(f["fixed_s"] - 1.0) < 1e-9 and abs(f["per_epoch_s"] - 0.75) < 1e-9
    rejax = fit([row("rejax", e, 0.5 + 1.0 * e) for e in (1, 2, 4)])
    profile = {"fit": {"jaxrl": f, "rejax": rejax}, "epochs": [1, 2, 4], "rounds": 3,
               "load_1min": [1.2, 1.9], "date": "2026-12-07", "command": "c"}  # fmt: skip
    text = "\n".join(speed_md({"rows": [], "ppo_profile": profile}, Path("figures")))
    assert "| jaxrl | 1.00 | 0.75 | 4.00 | 0.00 |" in text
    assert "| rejax | 0.50 | 1.00 | 4.50 | 0.00 |" in text
    assert "0.6 × rejax) is 2.70 s at 4 epochs" in text  # 0.6 × 4.50


def test_dqn_profile_takes_the_run_apart_beside_the_goal():
    from benchmarks.harness.report_suites import speed_md

    def run(name, run_s):
        return {"run": name, "total_timesteps": 100_000, "compile_s": 2.0, "run_s": run_s,
                "cpu_s": run_s, "steps_per_s": 100_000 / run_s, "final_return": 0.0}  # fmt: skip

    def algo(impl, steps_per_s):
        return {"kind": "algo", "algo": "dqn", "impl": impl, "env_id": "CartPole-v1", "seeds": 1,
                "total_timesteps": 100_000, "compile_s": 1.0, "run_s": 100_000 / steps_per_s,
                "steps_per_s": steps_per_s}  # fmt: skip

    profile = {"rows": [run("dqn-collect", 2.5), run("dqn-sample", 4.0), run("dqn", 20.0)],
               "seeds": 1, "repeats": 3, "load_1min": [0.4, 1.1], "date": "2026-12-07",
               "command": "c"}  # fmt: skip
    data = {"rows": [algo("jaxrl", 5_000.0), algo("rejax", 625.0)], "dqn_profile": profile}
    text = "\n".join(speed_md(data, Path("figures")))
    assert "| dqn-collect | acting, environment steps, replay inserts (learning off) |" in text
    assert "| the whole run (rejax's settings) | 100,000 | 2.0 | 20.00 | 20.00 | 5000 |" in text
    # 8 × 625 steps/s = 5,000 steps/s: 100,000 steps in 20 s; learning is 20 − 2.5 s of it
    assert "is a run of 20.00 s for 100,000 steps" in text
    assert "learning (whole run − collect) takes 17.50 s of the whole run's 20.00 s" in text
    assert "Where DQN's run time goes" not in "\n".join(speed_md({"rows": []}, Path("f")))


def test_a_variant_row_is_labelled_and_left_out_of_the_aggregate(tmp_path):
    from benchmarks.harness import report

    pub = {"value": 490.0, "source": "s", "tolerance": 0.0, "budget": 500_000}
    rows = [
        _fake_returns_row("ppo-CartPole-v1", "ppo", "CartPole-v1", [500.0] * 5, pub),
        _fake_returns_row("ppo-CartPole-v1-statestd", "ppo", "CartPole-v1", [100.0] * 5, pub),
    ]
    assert [figures.variant(r) for r in rows] == ["", "statestd"]
    agg = figures.aggregate_scores(rows, {"CartPole-v1": {"mean": 20.0}})
    assert agg["ppo"]["iqm"] == pytest.approx((500 - 20) / (490 - 20))  # not the variant's 100
    results = tmp_path / "results"
    results.mkdir()
    (results / "returns.json").write_text(
        json.dumps({"suite": "returns", "mode": "full", "rows": rows, "provenance": {}})
    )
    section = report.build_readme_section(results)
    assert "| ppo (statestd) | CartPole-v1 (500k) | 100.0" in section
    assert "| ppo | CartPole-v1 (500k) | 500.0" in section
