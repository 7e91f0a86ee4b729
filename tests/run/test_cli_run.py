"""What a user of ``jaxrl train`` meets: bad --out, Ctrl-C, output outside a terminal, labels."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from jaxrl.cli import main
from jaxrl.run import rundir
from jaxrl.run.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--set", "num_envs=4", "--set", "num_steps=16", "--set", "hidden_sizes=8"]
# XLA's own log lines (absl format) are not jaxrl's output; on a loaded machine XLA writes
# "E1207 04:08:03.451686 10967 slow_operation_alarm.cc:73] " and then a block between two
# lines of asterisks: "[Compiling module ...] Very slow compile? ...".
XLA_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ [^\n]*\n?(?:\*+\n[^\n]*\n\*+\n?)?", re.M)


def own_lines(err: str) -> list[str]:
    """The non-blank stderr lines jaxrl wrote, XLA's log messages left out."""
    return [ln for ln in XLA_LOG.sub("", err).splitlines() if ln.strip()]


def test_out_that_is_a_file_or_below_one_is_one_line_and_exit_2(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, expected in ((afile, "is a file"), (afile / "sub", "cannot write there")):
        rc = main(["train", "ppo", "--seeds", "1", "--out", str(out), *TINY])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_writes_the_metrics_so_far_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxrl.cli", "train", "ppo", "--seeds", "1", "--chunk", "1"]
    cmd += ["--total-steps", "6400000", "--out", str(out), *TINY]
    env = {**os.environ, "JAXRL_PROGRESS_EVERY": "0"}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines = []
    try:
        # Piped stdout: plain progress lines arrive while the run goes on (not at its end).
        for line in proc.stdout:
            lines.append(line)
            if "env steps/s" in line:
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert any("env steps/s" in ln and "last-update return" in ln for ln in lines), lines
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"jaxrl train --resume {out}" in err
    assert len(own_lines(err)) == 1, err
    rows = rundir.read_metrics_csv(out / "metrics.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert len(rows) == summary["stopped_after_update"] >= 1
    assert [int(r["update"]) for r in rows] == list(range(1, len(rows) + 1))


def test_plain_progress_lines_and_a_rate_without_compile_time():
    stream = io.StringIO()  # not a terminal
    bar = Progress("ppo CartPole-v1", enabled=True, stream=stream)
    bar.every_s = 0.0
    bar.add(total=1000, runs=2)
    time.sleep(0.4)  # "compiling"
    bar.started()
    time.sleep(0.05)
    bar.update(500, 12.5)
    bar.update(1000, 20.0)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "ppo CartPole-v1: compiling"
    assert lines[1].startswith("ppo CartPole-v1: 500/1,000 env steps (50%), ")
    assert "last-update return 12.5" in lines[1] and "last-update return 20" in lines[2]
    rate = float(lines[2].split(", ")[1].split()[0].replace(",", ""))
    # 2 runs × 1000 steps; counted from started(), the 0.4 s of compiling excluded.
    assert rate > 2000 / 0.4


def test_plain_lines_come_at_most_every_interval():
    stream = io.StringIO()
    bar = Progress("x", enabled=True, stream=stream)
    bar.every_s = 3600.0
    bar.add(total=10)
    bar.started()
    for done in range(1, 11):
        bar.update(done, 1.0)
    # "compiling", then only the last update (the interval never elapsed).
    assert len(stream.getvalue().splitlines()) == 2


def test_tabular_runs_count_episodes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JAXRL_PROGRESS_EVERY", "0")
    out = tmp_path / "sarsa"
    argv = ["train", "sarsa", "--env", "CliffWalking", "--seeds", "2", "--out", str(out)]
    assert main([*argv, "--set", "num_episodes=20", "--no-checkpoint"]) == 0
    printed = capsys.readouterr().out
    assert "20/20 episodes" in printed and "env steps" not in printed.split("final return")[0]
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "episodes" in header and "env_steps" not in header


def test_metrics_csv_names_env_steps_once(tmp_path):
    m = {"env_steps": np.array([[4.0, 8.0]]), "episode_return": np.array([[1.0, 2.0]])}
    rundir.write_metrics_csv(tmp_path, m, [0], 4)
    header, *rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert header == "run,seed,update,env_steps,episode_return"
    assert rows == ["0,0,1,4,1", "0,0,2,8,2"]


def test_curves_say_what_line_and_band_are(tmp_path):
    rng = np.random.default_rng(0)
    caption = rundir.plot_curves(tmp_path / "c.png", {"ppo": rng.normal(size=(3, 200))}, 10)
    assert (
        caption
        == "line: IQM over 3 seeds; band: 95% bootstrap CI of the IQM; smoothed over 4 updates"
    )
    assert Image.open(tmp_path / "c.png").text["Description"] == caption


def test_value_iteration_heatmap_title_is_not_clipped(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from jaxrl.tabular import save_solution_heatmap, solve

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    save_solution_heatmap(solve("value-iteration", "FrozenLake-4x4"), tmp_path / "v.png")
    fig = figures[0]
    renderer = fig.canvas.get_renderer()
    title = fig.axes[0].title
    box, frame = title.get_window_extent(renderer), fig.bbox
    assert "FrozenLake-4x4" in title.get_text()
    assert box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1, (box, frame)


def test_llm_summary_says_before_and_after():
    from jaxrl.run.llm import summary_lines

    summary = {"step": 300.0, "accuracy": 0.906, "before_accuracy": 0.988, "kl_ref": 0.5}
    summary.update({"before_kl_ref": 0.0, "heldout_loss": 0.02, "wall_time_s": 12.0})
    assert summary_lines(summary) == [
        "held-out accuracy (greedy, exact answers): 0.988 → 0.906",
        "held-out KL to the reference (nats per completion): 0.000 → 0.500",
        "wall time 12.0 s",
    ]


def test_solve_and_llm_tables_go_through_the_run_directory_writer(tmp_path):
    from jaxrl.run.writer import RunWriter
    from jaxrl.tabular import solve

    solution = solve("value-iteration", "FrozenLake-4x4")
    RunWriter.for_solution(tmp_path / "vi", "value-iteration", "FrozenLake-4x4").write_solution(
        solution, 1e-6
    )
    summary = json.loads((tmp_path / "vi" / "summary.json").read_text())
    np.testing.assert_allclose(summary["values"], np.asarray(solution.result.values), rtol=1e-6)
    assert (tmp_path / "vi" / "values.png").stat().st_size > 1000
    rundir.write_table_csv(tmp_path / "evals.csv", {"step": [0, 10], "accuracy": [0.5, 0.75]})
    assert (tmp_path / "evals.csv").read_text().splitlines() == [
        "accuracy,step",
        "0.5,0",
        "0.75,10",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evals.csv", "vi"]  # no temp files


def test_llm_stage_stops_on_a_non_finite_loss_with_its_metrics(tmp_path, capsys):
    out = tmp_path / "sft"
    sets = ["num_steps=20", "eval_every=10", "eval_prompts=8", "batch_size=8"]
    sets += ["num_train_examples=64", "learning_rate=1e30", "warmup_steps=0"]
    sets += ["model.num_layers=1", "model.d_model=16", "model.d_ff=32"]
    argv = ["llm", "sft", "--task", "addition", "--out", str(out), "--no-progress"]
    rc = main([*argv, *(a for s in sets for a in ("--set", s))])
    err = capsys.readouterr().err
    assert rc == 2 and "non-finite loss at update" in err and "Traceback" not in err, err
    update = int(err.split("at update ")[1].split(";")[0])
    rows = rundir.read_metrics_csv(out / "metrics.csv")
    assert len(rows) in (10, 20) and update <= len(rows)
    assert not np.isfinite(float(rows[update - 1]["loss"]))


def test_ctrl_c_stops_an_llm_stage_with_its_metrics(tmp_path):
    out = tmp_path / "sft"
    sets = ["num_steps=100000", "eval_every=10", "eval_prompts=8", "batch_size=8"]
    sets += ["num_train_examples=64", "model.num_layers=1", "model.d_model=16", "model.d_ff=32"]
    cmd = [sys.executable, "-m", "jaxrl.cli", "llm", "sft", "--task", "addition", "--out", str(out)]
    cmd += [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "JAXRL_PROGRESS_EVERY": "0"}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in proc.stdout:
            if "updates" in line and "held-out" in line:  # a plain progress line: training
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert len(own_lines(err)) == 1 and "stopped after update" in err, err
    rows = len(rundir.read_metrics_csv(out / "metrics.csv"))
    assert rows >= 10 and rows % 10 == 0  # stopped at an interval's end, not inside one
    with np.load(out / "checkpoint" / "checkpoint.npz") as ckpt:  # written whole, same update
        assert int(ckpt["step"]) == rows


def test_quick_budget_keeps_off_policy_updates_small_and_valid():
    """JAXRL_QUICK (the documented commands in CI): 2 updates of at most 256 steps for an
    off-policy agent, a multiple of num_envs * train_frequency, learning from the first."""
    from jaxrl.agents import dqn, ppo, sac
    from jaxrl.run import train_cli

    cfg, seeds = train_cli._quick_train(sac, sac.Config(), [0, 1, 2])
    assert (cfg.steps_per_update, cfg.total_timesteps, cfg.learning_starts) == (256, 512, 128)
    assert seeds == [0, 1]
    dqn_cfg = dqn.Config(num_envs=3, train_frequency=5, steps_per_update=990, buffer_size=9_999)
    cfg, _ = train_cli._quick_train(dqn, dqn_cfg, [0])
    assert cfg.steps_per_update == 255 and cfg.total_timesteps == 510
    cfg, _ = train_cli._quick_train(ppo, ppo.Config(), [0])
    assert cfg.total_timesteps == 2 * ppo.make_agent(cfg).steps_per_update
