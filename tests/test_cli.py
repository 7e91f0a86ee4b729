"""The jaxrl command end to end: run directories, one-line errors with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxrl.agents import ppo
from jaxrl.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--total-steps",
    "768",
    "--set",
    "num_envs=4",
    "--set",
    "num_steps=16",
    "--set",
    "num_minibatches=2",
    "--set",
    "hidden_sizes=8",
    "--no-progress",
]


def test_train_writes_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "ppo", "--seeds", "2", "--out", str(out), *TINY]) == 0
    for name in ("config.json", "metrics.csv", "summary.json", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert any((out / "checkpoints").iterdir())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_return"]["n"] == 2
    assert summary["timing"]["runs"] == 2 and summary["timing"]["compile_s"] > 0
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 12  # header + seeds × updates
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "ppo" and config["config"]["num_envs"] == 4
    printed = capsys.readouterr().out
    assert "final return" in printed
    # The devices line says how many ran the runs, of how many there were (summary.json's).
    used, available = summary["devices"]["used"], summary["devices"]["available"]
    assert 1 <= used <= available
    assert f"devices: {used} of {available} {summary['devices']['kind']} device" in printed
    # Another config into the same --out: one line naming only the fields that differ.
    again = ["train", "ppo", "--seeds", "2", "--out", str(out), *TINY, "--set", "gamma=0.9"]
    assert main(again) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a different run: gamma (0.99 there, 0.9 now)" in err, err
    assert "learning_rate" not in err and len(err.splitlines()) == 1


def test_the_devices_line_says_used_of_available():
    from jaxrl.run.train_cli import _devices_line

    devices = {"used": 1, "kind": "cpu", "available": 4, "processes": 1}
    assert _devices_line(devices, "--devices") == "devices: 1 of 4 cpu devices used; --devices"
    devices = {"used": 8, "kind": "gpu", "available": 8, "processes": 2}
    assert _devices_line(devices, "") == "devices: 8 of 8 gpu devices over 2 processes used"


def test_sweep_from_the_command_line(tmp_path):
    out = tmp_path / "sweep"
    assert (
        main(
            [
                "train",
                "ppo",
                "--seeds",
                "1",
                "--out",
                str(out),
                "--sweep",
                "learning_rate=1e-3,3e-3",
                *TINY,
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert [c["values"]["learning_rate"] for c in summary["configurations"]] == [1e-3, 3e-3]


def test_solve_and_tabular_train(tmp_path, capsys):
    assert (
        main(["solve", "value-iteration", "--env", "FrozenLake-4x4", "--out", str(tmp_path / "vi")])
        == 0
    )
    summary = json.loads((tmp_path / "vi" / "summary.json").read_text())
    assert summary["time_limited_return"] == pytest.approx(0.74, abs=0.01)  # Gymnasium's ≈ 0.74
    assert (tmp_path / "vi" / "values.png").exists()
    assert (
        main(
            [
                "train",
                "sarsa",
                "--env",
                "CliffWalking",
                "--seeds",
                "2",
                "--no-progress",
                "--set",
                "num_episodes=50",
                "--out",
                str(tmp_path / "sarsa"),
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "pop"], "unknown algorithm 'pop' (did you mean 'ppo'?)"),
        (["train", "ppo", "--env", "CartPole"], "unknown environment 'CartPole' (did you mean"),
        (["train", "ppo", "--set", "lr=3"], "unknown field 'lr'"),
        (["train", "ppo", "--set", "learning_rate=-1"], "learning_rate = -1.0 is not allowed"),
        (["train", "ppo", "--seeds", "0"], "--seeds must be >= 1"),
        (["train", "ppo", "--set", "num_envs"], "--set expects field=value"),
        (["train", "ppo", "--seeds", "two"], "invalid int value"),
        (["bogus"], "invalid choice"),
        (["train"], "name an algorithm"),
        (["train", "--resume", "/nonexistent/run"], "--resume /nonexistent/run: no such directory"),
        (["train", "--resume", str(ROOT / "docs")], "no config.json there"),
        (["train", "PPO"], "unknown algorithm 'PPO' (did you mean 'ppo'?)"),
        (["solve", "value-iteraton"], "unknown method 'value-iteraton' (did you mean 'value-itera"),
        (["train", "ppo", "--env", "cartpole-v1"], "(did you mean 'CartPole-v1'?)"),
        (["train", "ppo", "--env", "CliffWalking"], "CliffWalking is a tabular environment: use"),
        (["train", "dqn", "--set", "env_id=FrozenLake-4x4"], "is a tabular environment: use q-l"),
        (["train", "sarsa", "--env", "CartPole-v1"], "CartPole-v1 is not a tabular environment"),
        (["train", "ppo", "--chunk", "0"], "--chunk must be >= 1, got 0"),
        (["train", "ppo", "--keep", "0"], "--keep must be >= 1, got 0"),
        (["train", "ppo", "--total-steps", "1e5x"], "--total-steps must be a whole number >= 1"),
        (["train", "ppo", "--total-steps", "2.5"], "--total-steps must be a whole number >= 1"),
        (["solve", "value-iteration", "--env", "Frozen"], "unknown environment 'Frozen'"),
        (["train", "sarsa", "--total-steps", "5"], "counts episodes"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_names_and_counts_are_checked_before_jax_is_imported():
    # A typo must be answered at once: importing jax takes seconds (more on a loaded machine).
    code = (
        "import sys; from jaxrl.cli import main; "
        "codes = [main(a) for a in (['train', 'pppo'], ['train', 'ppo', '--env', 'CartPol'], "
        "['train', 'sarsa', '--env', 'Pendulum-v1'], ['train', 'ppo', '--chunk', '0'], "
        "['solve', 'policy-iter'])]; "
        "assert codes == [2] * 5, codes; assert 'jax' not in sys.modules, 'jax was imported'"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stderr.strip().splitlines()) == 5, out.stderr


def test_names_known_before_jax_match_the_registries():
    from jaxrl import cli_checks as cli
    from jaxrl import envs
    from jaxrl.agents import ALGORITHMS
    from jaxrl.tabular import SOLVERS, TABULAR_ENVS
    from jaxrl.tabular.agents import ALGORITHMS as TABULAR

    assert set(cli.DEEP_ALGORITHMS) <= set(ALGORITHMS)
    assert all(cli._known_algorithm(name) for name in ALGORITHMS)  # an added one passes too
    assert not cli._known_algorithm("off_policy") and not cli._known_algorithm("ppo2")
    assert list(cli.TABULAR_ALGORITHMS) == list(TABULAR)
    assert sorted(cli.TABULAR_ENVS) == sorted(TABULAR_ENVS)
    assert list(cli.SOLVE_METHODS) == list(SOLVERS)
    assert sorted(cli.ENVS) == sorted(e for e in envs.registered_envs() if ":" not in e)


def test_total_steps_forms_and_the_rounding_note(capsys):
    from jaxrl.cli_checks import _parse_count
    from jaxrl.run.train_cli import _note_rounding

    assert [_parse_count("--total-steps", t) for t in ("1e5", "100_000", "100000")] == [100_000] * 3
    assert _parse_count("--total-steps", "12345678901234567") == 12345678901234567
    config = ppo.Config(total_timesteps=500_000)
    _note_rounding(ppo, config, 500_000)
    out = capsys.readouterr().out
    assert "--total-steps 500,000 is not a multiple of the 512" in out and "499,712 steps" in out
    _note_rounding(ppo, ppo.Config(total_timesteps=512_000), 512_000)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("algo", ["dqn", "ddpg", "td3", "sac"])
def test_off_policy_warm_up_is_not_divergence(algo, tmp_path):
    # Update 1 is all warm-up (no learning step): its losses must not read as non-finite.
    out = tmp_path / algo
    argv = ["train", algo, "--seeds", "1", "--total-steps", "1000", "--out", str(out)]
    argv += ["--no-progress", "--no-checkpoint"]
    for kv in ("steps_per_update=500", "learning_starts=600", "batch_size=8", "hidden_sizes=8"):
        argv += ["--set", kv]
    if algo != "dqn":
        argv += ["--set", "buffer_size=1000"]
    assert main(argv) == 0
    header, *rows = (out / "metrics.csv").read_text().splitlines()
    columns = header.split(",")
    assert columns.count("env_steps") == 1, header
    losses = [i for i, c in enumerate(columns) if "loss" in c]
    assert losses, header
    first, second = (r.split(",") for r in rows)
    assert all(float(first[i]) == 0.0 for i in losses)  # warm-up: no learning step yet
    assert float(first[columns.index("grad_steps")]) == 0
    assert float(second[columns.index("grad_steps")]) > 0
    assert all(np.isfinite(float(second[i])) and float(second[i]) != 0.0 for i in losses)


def _bad_value(field, type_):
    """Values that no PPO Config field of this type allows."""
    words = st.sampled_from(["abc", "", "1e400x", "[1]", "none", "-", "1,2,x"])
    if type_ is bool:
        return st.one_of(
            words.filter(lambda w: w.lower() not in ("", "none")),
            st.sampled_from(["2", "-1", "maybe"]),
        )
    if type_ is int:
        return st.one_of(words, st.integers(-(10**6), 0).map(str), st.sampled_from(["2.5", "nan"]))
    if field == "log_std_init":  # log σ: negative is fine, [−20, 2] is allowed
        return st.one_of(
            words,
            st.floats(min_value=2.001, max_value=1e30).map(repr),
            st.floats(min_value=-1e30, max_value=-20.001).map(repr),
            st.sampled_from(["nan", "inf", "-inf"]),
        )
    if type_ is float:
        return st.one_of(
            words, st.floats(max_value=-1e-9).map(repr), st.sampled_from(["nan", "inf", "-inf"])
        )
    if field == "env_id":
        return st.text(alphabet="xyz-_", min_size=1, max_size=8)
    if field in ("activation", "torso"):
        return st.sampled_from(["sigmoid", "mlp2", "", "TANH"])
    return st.sampled_from(["abc", "0", "-4", "4,-1", ""])  # hidden_sizes


FIELDS = [(f.name, f.type) for f in __import__("dataclasses").fields(ppo.Config)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_bad_value_for_any_field_exits_2_with_one_line(data):
    import typing

    hints = typing.get_type_hints(ppo.Config)
    name = data.draw(st.sampled_from([n for n, _ in FIELDS]))
    tp = hints[name]
    value = data.draw(_bad_value(name, tp if tp in (bool, int, float) else None))
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "ppo", "--no-progress", "--set", f"{name}={value}"])
    assert code == 2, (name, value)
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), (name, value, err.getvalue())


def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "jaxrl.cli", "list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0 and "ppo" in out.stdout


def test_llm_stages_chain_through_run_directories(tmp_path):
    small = [
        "--no-progress",
        "--set",
        "eval_prompts=16",
        "--set",
        "model.num_layers=1",
        "--set",
        "model.d_model=32",
        "--set",
        "model.d_ff=64",
    ]
    sft = tmp_path / "sft"
    assert (
        main(
            [
                "llm",
                "sft",
                "--task",
                "preference",
                "--out",
                str(sft),
                "--set",
                "num_steps=20",
                "--set",
                "eval_every=10",
                "--set",
                "num_train_examples=256",
                "--set",
                "batch_size=16",
                *small,
            ]
        )
        == 0
    )
    for name in ("config.json", "metrics.csv", "evals.csv", "summary.json", "curves.png"):
        assert (sft / name).exists(), name
    assert (sft / "model" / "params.msgpack").exists()
    assert len((sft / "metrics.csv").read_text().splitlines()) == 21
    dpo = tmp_path / "dpo"
    assert (
        main(
            [
                "llm",
                "dpo",
                "--from",
                str(sft),
                "--out",
                str(dpo),
                "--no-progress",
                "--set",
                "num_steps=10",
                "--set",
                "eval_every=5",
                "--set",
                "batch_size=8",
                "--set",
                "num_train_pairs=64",
                "--set",
                "eval_pairs=16",
                "--set",
                "eval_prompts=16",
            ]
        )
        == 0
    )
    summary = json.loads((dpo / "summary.json").read_text())
    assert 0.0 <= summary["heldout_pref_accuracy"] <= 1.0
    config = json.loads((dpo / "config.json").read_text())
    assert config["task"] == "preference" and config["from"] == str(sft)
