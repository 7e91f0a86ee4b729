"""One run split over 4 forced host devices equals the one-device run (float32 rounding):
PQN, PPO (with reward scaling and per-minibatch advantage standardisation), A2C and REINFORCE."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.subprocess_env import host_devices_env

ROOT = Path(__file__).resolve().parents[2]

CODE = """
    import jax, numpy as np
    assert len(jax.devices()) == 4, jax.devices()
    from jaxrl.agents import pqn
    from jaxrl.run import data_parallel
    cfg = pqn.Config(env_id="CartPole-v1", total_timesteps=8 * 16 * 6, num_envs=8, num_steps=16,
                     num_minibatches=4, num_epochs=2, hidden_sizes=(16,), learning_rate=1e-3)
    key = jax.random.PRNGKey(0)
    one_state, one = jax.jit(pqn.make_train(cfg))(key)
    split_state, split = jax.jit(data_parallel.make_train(pqn, cfg))(key)
    # The chunked form (init, then update calls) gives the same numbers as the scan.
    agent = data_parallel.make_agent(pqn, cfg)
    state = jax.jit(agent.init)(key, cfg)
    update = jax.jit(agent.update)
    rows = []
    for _ in range(agent.num_updates):
        state, m = update(state, cfg)
        rows.append(m)
    chunked = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    params = {f"p{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(one_state.params))}
    split_leaves = jax.tree.leaves(split_state.params)
    split_params = {f"s{i}": np.asarray(x) for i, x in enumerate(split_leaves)}
    np.savez(OUT + "/dp.npz",
             **{f"one.{k}": v for k, v in one.items()},
             **{f"split.{k}": v for k, v in split.items()},
             **{f"chunked.{k}": v for k, v in chunked.items()},
             **params, **split_params,
             one_obs=np.asarray(one_state.obs), split_obs=np.asarray(split_state.obs))
"""


def _run_on_four_devices(code: str, out: Path) -> None:
    env = host_devices_env(4)
    proc = subprocess.run(
        [sys.executable, "-c", f"OUT = {str(out)!r}\n" + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """One process with 4 forced host devices runs both comparisons (PQN, then the on-policy
    agents): one interpreter start and one jax import instead of two."""
    out = tmp_path_factory.mktemp("four_devices")
    _run_on_four_devices(CODE + ON_POLICY, out)
    return out


def test_pqn_split_over_four_devices_equals_one_device(four_devices):
    r = np.load(four_devices / "dp.npz")
    names = [k[len("one.") :] for k in r.files if k.startswith("one.")]
    assert {"episode_return", "td_loss", "q_mean", "episodes"} <= set(names)
    for name in names:
        np.testing.assert_allclose(r[f"split.{name}"], r[f"one.{name}"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(r[f"chunked.{name}"], r[f"one.{name}"], rtol=1e-5, atol=1e-5)
    # The environments were split, not copied: device d holds envs 2d, 2d+1 of the 8.
    np.testing.assert_allclose(r["split_obs"], r["one_obs"], rtol=1e-5, atol=1e-6)
    n = len([k for k in r.files if k.startswith("p")])
    for i in range(n):  # the split state has the one-device shapes (parameters replicated)
        np.testing.assert_allclose(r[f"s{i}"], r[f"p{i}"], rtol=1e-5, atol=1e-6)
    # A run on 4 devices finished episodes (the comparison is not of empty metrics).
    assert np.nansum(r["one.episodes"]) > 0


ON_POLICY = """
    import jax, numpy as np
    assert len(jax.devices()) == 4, jax.devices()
    from jaxrl.agents import a2c, ppo, reinforce
    from jaxrl.run import data_parallel
    small = dict(env_id="CartPole-v1", total_timesteps=8 * 16 * 5, num_envs=8, num_steps=16,
                 hidden_sizes=(16,))
    runs = {
        "ppo": (ppo, ppo.Config(num_minibatches=4, num_epochs=2, normalize_rewards=True,
                                learning_rate=3e-3, **small)),
        "a2c": (a2c, a2c.Config(normalize_advantages=True, **small)),
        "reinforce": (reinforce, reinforce.Config(**small)),
    }
    key = jax.random.PRNGKey(3)
    arrays = {}
    for name, (module, cfg) in runs.items():
        one_state, one = jax.jit(module.make_train(cfg))(key)
        split_state, split = jax.jit(data_parallel.make_train(module, cfg))(key)
        arrays.update({f"{name}.one.{k}": v for k, v in one.items()})
        arrays.update({f"{name}.split.{k}": v for k, v in split.items()})
        leaves = zip(jax.tree.leaves(one_state), jax.tree.leaves(split_state))
        for i, (a, b) in enumerate(leaves):
            arrays[f"{name}.state_one.{i}"], arrays[f"{name}.state_split.{i}"] = a, b
        if name == "ppo":  # the chunked form, as jaxrl.run drives it, and the state's layout
            agent = data_parallel.make_agent(module, cfg)
            state = jax.jit(agent.init)(key, cfg)
            update = jax.jit(agent.update)
            rows = []
            for _ in range(agent.num_updates):
                state, m = update(state, cfg)
                rows.append(m)
            arrays.update({f"chunked.{k}": np.stack([r[k] for r in rows]) for k in rows[0]})
            arrays["obs_devices"] = np.asarray(len(state.obs.sharding.device_set))
            arrays["params_replicated"] = np.asarray(
                all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state.params))
            )
    np.savez(OUT + "/on_policy.npz", **{k: np.asarray(v) for k, v in arrays.items()})
"""


def test_on_policy_split_over_four_devices_equals_one_device(four_devices):
    r = np.load(four_devices / "on_policy.npz")
    for name in ("ppo", "a2c", "reinforce"):
        metrics = [k.split(".", 2)[2] for k in r.files if k.startswith(f"{name}.one.")]
        assert {"episode_return", "policy_loss", "value_loss", "explained_variance"} <= set(metrics)
        for m in metrics:
            one, split = r[f"{name}.one.{m}"], r[f"{name}.split.{m}"]
            np.testing.assert_allclose(split, one, rtol=2e-5, atol=2e-5, err_msg=f"{name} {m}")
        assert np.nansum(r[f"{name}.one.episodes"]) > 0
        # The runs learned something different over the updates (not a comparison of constants).
        assert np.ptp(r[f"{name}.one.value_loss"]) > 1e-3
        n = len([k for k in r.files if k.startswith(f"{name}.state_one.")])
        for i in range(n):  # the split state is the one-device state, shapes included
            one, split = r[f"{name}.state_one.{i}"], r[f"{name}.state_split.{i}"]
            assert split.shape == one.shape
            if np.issubdtype(one.dtype, np.floating):
                np.testing.assert_allclose(split, one, rtol=1e-4, atol=1e-5)
            else:
                np.testing.assert_array_equal(split, one)
    for m in ("episode_return", "policy_loss", "approx_kl", "clip_fraction"):
        np.testing.assert_allclose(r[f"chunked.{m}"], r[f"ppo.one.{m}"], rtol=2e-5, atol=2e-5)
    assert int(r["obs_devices"]) == 4 and bool(r["params_replicated"])


def test_agent_without_axis_name_is_refused():
    import types

    from jaxrl.agents import a2c, ppo, pqn, reinforce, trpo
    from jaxrl.run import data_parallel

    for module in (pqn, ppo, a2c, reinforce):
        assert data_parallel.supports_data_parallel(module)
    assert not data_parallel.supports_data_parallel(trpo)  # its CG step needs the whole batch
    whole_runs_only = types.SimpleNamespace(
        __name__="jaxrl.agents.whole", make_agent=lambda config: None
    )
    assert not data_parallel.supports_data_parallel(whole_runs_only)
    with pytest.raises(ValueError, match="whole cannot split one run"):
        data_parallel.make_agent(whole_runs_only, pqn.Config())


def test_cli_devices_splits_one_seed_and_equals_one_device(tmp_path):
    """``jaxrl train ppo --devices 4 --seeds 1`` splits the run; its metrics are one device's."""
    from jaxrl._config import config_from_overrides
    from jaxrl.agents import ppo
    from jaxrl.run import sweep

    sets = dict(num_envs="8", num_steps="16", num_minibatches="4", hidden_sizes="16")
    args = ["train", "ppo", "--devices", "4", "--seeds", "1", "--total-steps", "1024"]
    args += [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    args += ["--out", str(tmp_path / "split"), "--no-progress"]
    env = dict(os.environ)  # tests/conftest.py's XLA_FLAGS: --devices 4 adds the device count
    code = f"import sys; from jaxrl.cli import main; sys.exit(main({args!r}))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "one run split over 4 devices" in proc.stdout + proc.stderr
    cfg = config_from_overrides(ppo.Config, {**sets, "total_timesteps": "1024"})
    one = sweep(ppo, cfg, seeds=[0], progress=False, checkpoint=False, log=lambda m: None)
    import csv

    with open(tmp_path / "split" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == one.metrics["episode_return"].shape[1] == 8
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl"):
        got = np.array([float(r[name]) for r in rows])
        np.testing.assert_allclose(got, one.metrics[name][0], rtol=1e-4, atol=1e-5, err_msg=name)
