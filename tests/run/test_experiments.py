"""Sweeps, sharding, checkpoints and resume, non-finite losses, reproducibility."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxrl.agents import ppo
from jaxrl.run import Checkpointer, NonFiniteError, run_seeds, sweep, train
from tests.subprocess_env import host_devices_env

TINY = dict(
    total_timesteps=4 * 16 * 6, num_envs=4, num_steps=16, num_minibatches=2, hidden_sizes=(8,)
)
ROOT = Path(__file__).resolve().parents[2]


def tiny(**kw):
    return ppo.Config(**{**TINY, **kw})


def run_python(code: str, env_extra=None, timeout=600):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_sweep_equals_separate_runs():
    """Equal up to float32 rounding: XLA may order a batched reduction differently."""
    res = sweep(
        ppo, tiny(), {"learning_rate": [1e-3, 3e-3]}, seeds=[0, 1], progress=False, chunk_updates=4
    )
    assert res.metrics["policy_loss"].shape == (4, 6)
    for i, lr in enumerate([1e-3, 3e-3]):
        single = run_seeds(ppo.make_agent(tiny()), tiny(learning_rate=lr), [0, 1], chunk_updates=4)
        for name, values in single.metrics.items():
            np.testing.assert_allclose(
                res.metrics[name][2 * i : 2 * i + 2], values, rtol=1e-4, atol=1e-6, err_msg=name
            )
    assert len(res.summary["configurations"]) == 2


def test_run_seeds_equals_each_seeds_own_train():
    """run_seeds (inits one run after another, updates vmapped) gives train(PRNGKey(seed))."""
    res = run_seeds(ppo.make_agent(tiny()), tiny(), [5, 6], chunk_updates=4)
    single = run_seeds(ppo.make_agent(tiny()), tiny(), [6], chunk_updates=4)  # unbatched path
    train = jax.jit(ppo.make_train(tiny()))
    for i, seed in enumerate([5, 6]):
        _, ref = train(jax.random.PRNGKey(seed))
        for name, values in ref.items():
            np.testing.assert_allclose(
                res.metrics[name][i], values, rtol=1e-4, atol=1e-6, err_msg=name
            )
            if seed == 6:
                assert single.metrics[name].shape == (1, len(values))
                np.testing.assert_allclose(
                    single.metrics[name][0], values, rtol=1e-4, atol=1e-6, err_msg=name
                )


def test_static_field_sweep_splits_programs():
    notes = []
    res = sweep(
        ppo, tiny(), {"hidden_sizes": [(8,), (4, 4)]}, seeds=[0], progress=False, log=notes.append
    )
    assert res.summary["timing"]["compiled_programs"] == 2
    assert "hidden_sizes" in notes[0]


def test_same_key_same_metrics_and_different_keys_differ():
    agent = ppo.make_agent(tiny())
    a = run_seeds(agent, tiny(), [3, 4], chunk_updates=4)
    b = run_seeds(agent, tiny(), [3, 4], chunk_updates=4)
    jax.tree.map(np.testing.assert_array_equal, a.metrics, b.metrics)
    assert not np.array_equal(a.metrics["entropy"][0], a.metrics["entropy"][1])


def test_sharded_over_four_host_devices_equals_unsharded(tmp_path):
    code = f"""
        import jax, numpy as np
        assert len(jax.devices()) == 4, jax.devices()
        from jaxrl.agents import ppo
        from jaxrl.run import train
        cfg = ppo.Config(**{TINY!r})
        res = train(ppo, cfg, [0, 1, 2, 3, 4], "{tmp_path}/run", progress=False,
                    chunk_updates=4, checkpoint=False)
        np.savez("{tmp_path}/sharded.npz", **res.metrics)
    """
    out = run_python(code, host_devices_env(4))
    assert out.returncode == 0, out.stderr[-2000:]
    devices = json.loads((tmp_path / "run" / "summary.json").read_text())["devices"]
    assert devices["used"] == 4 and devices["available"] == 4, devices  # 5 runs padded to 8
    assert devices["kind"] == "cpu" and devices["processes"] == 1, devices
    sharded = np.load(tmp_path / "sharded.npz")
    single = run_seeds(
        ppo.make_agent(tiny()), tiny(), [0, 1, 2, 3, 4], chunk_updates=4, shard=False
    )
    for name, values in single.metrics.items():
        np.testing.assert_allclose(sharded[name], values, rtol=1e-5, atol=1e-6, err_msg=name)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    killed = tmp_path / "killed"
    code = f"""
        import os, signal
        from jaxrl.run import checkpoint
        save = checkpoint.Checkpointer.save
        def save_then_die(self, done, state, metrics):
            save(self, done, state, metrics)
            if done >= 2:  # the second checkpoint is on its way: die mid-run, no cleanup
                self.wait()
                os.kill(os.getpid(), signal.SIGKILL)
        checkpoint.Checkpointer.save = save_then_die
        from jaxrl.cli import main
        main(["train", "ppo", "--seeds", "2", "--out", "{killed}", "--chunk", "1", "--no-progress",
              "--total-steps", "{TINY["total_timesteps"]}", "--set", "num_envs=4",
              "--set", "num_steps=16", "--set", "num_minibatches=2", "--set", "hidden_sizes=8"])
    """
    out = run_python(code)
    assert out.returncode == -9, (out.returncode, out.stderr[-2000:])
    assert not (killed / "metrics.csv").exists()
    args = [
        "--seeds",
        "2",
        "--chunk",
        "1",
        "--no-progress",
        "--total-steps",
        str(TINY["total_timesteps"]),
        "--set",
        "num_envs=4",
        "--set",
        "num_steps=16",
        "--set",
        "num_minibatches=2",
        "--set",
        "hidden_sizes=8",
    ]
    from jaxrl.cli import main

    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    # The uninterrupted reference needs only its metrics: no checkpoints to write.
    assert main(["train", "ppo", "--out", str(tmp_path / "full"), "--no-checkpoint", *args]) == 0
    resumed = (killed / "metrics.csv").read_text()
    assert resumed == (tmp_path / "full" / "metrics.csv").read_text()
    assert len(resumed.splitlines()) == 1 + 2 * 6


def test_truncated_newest_checkpoint_falls_back(tmp_path):
    cfg = tiny()
    train(ppo, cfg, [0], tmp_path, progress=False, chunk_updates=2, keep=3)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.steps() == [2, 4, 6]
    # Truncate every data file of the newest checkpoint, as a crash mid-write could.
    for f in (tmp_path / "checkpoints" / "6").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "commit_success" not in f.name:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    agent = ppo.make_agent(cfg)
    keys = jax.numpy.stack([jax.random.PRNGKey(0)])
    abstract = jax.eval_shape(jax.vmap(agent.init, in_axes=(0, None)), keys, cfg)
    _, m = jax.eval_shape(jax.vmap(agent.update, in_axes=(0, None)), abstract, cfg)
    with pytest.warns(UserWarning, match="cannot be read"):
        restored = ckpt.restore(abstract, {k: v.dtype for k, v in m.items()})
    assert restored.updates_done == 4
    assert restored.metrics["policy_loss"].shape == (1, 4)


def test_rerun_of_a_finished_run_leaves_it_alone_and_refuses_a_different_run(tmp_path):
    # chunk_updates=2 as in the other one-seed tests here: the same compiled chunk program
    first = train(ppo, tiny(), [0], tmp_path, progress=False, chunk_updates=2)
    assert first.summary["devices"]["used"] == 1  # one run stays on one device, unbatched
    assert first.summary["devices"]["kind"] == jax.devices()[0].platform
    files = {n: (tmp_path / n).read_bytes() for n in ("metrics.csv", "summary.json")}
    notes = []
    res = train(ppo, tiny(), [0], tmp_path, progress=False, chunk_updates=2, log=notes.append)
    assert any("holds a finished run (6 updates)" in n for n in notes), notes
    # Nothing compiled or ran; the files (and the timing measured the first time) are kept.
    assert res.compile_s == 0.0 and res.run_s == 0.0
    assert res.summary["timing"] == first.summary["timing"]
    assert {n: (tmp_path / n).read_bytes() for n in files} == files
    np.testing.assert_array_equal(res.metrics["episode_return"], first.metrics["episode_return"])
    with pytest.raises(ValueError, match="holds a different run"):
        train(ppo, tiny(learning_rate=1e-2), [0], tmp_path, progress=False)


def test_non_finite_loss_stops_with_a_message_and_readable_metrics(tmp_path):
    with pytest.raises(NonFiniteError, match=r"non-finite \w+ at update \d+ \(run 0, seed 0"):
        train(ppo, tiny(learning_rate=1e30), [0], tmp_path, progress=False, chunk_updates=2)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("run,seed,update,env_steps")
    assert len(rows) >= 2


def test_tensorboard_events_are_written(tmp_path):
    pytest.importorskip("tensorboardX")
    train(
        ppo, tiny(), [0], tmp_path, progress=False, tensorboard=True, checkpoint=False,
        chunk_updates=2,
    )  # fmt: skip
    events = list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 100
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["timing"]["runs"] == 1


def test_non_finite_parameters_stop_the_run_naming_the_run_and_seed():
    """A parameter that turns NaN with every loss finite: the chunk's finite flag stops it."""
    from typing import NamedTuple

    from jaxrl.agents.base import Agent

    class State(NamedTuple):
        params: jax.Array
        t: jax.Array

    def update(state, config):  # run 1's parameter is NaN from update 3 on
        bad = (state.t >= 2) & (state.params[0] > 1.5)
        params = jax.numpy.where(bad, jax.numpy.nan, state.params)
        return State(params, state.t + 1), {"loss": jax.numpy.zeros(()), "t": state.t}

    def init(key, config):
        return State(jax.numpy.full((1,), jax.random.key_data(key)[1], jax.numpy.float32), 0)

    agent = Agent(init, update, num_updates=8, steps_per_update=1)
    with pytest.raises(
        NonFiniteError, match=r"non-finite parameters by update 4 \(run 1, seed 2"
    ) as e:
        run_seeds(agent, None, [1, 2], chunk_updates=2)
    assert e.value.updates_done == 4 and e.value.metrics["t"].shape == (2, 4)
    np.testing.assert_array_equal(e.value.metrics["t"][1], [0, 1, 2, 3])
