"""One PQN run split over 4 forced host devices equals the one-device run (float32 rounding)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

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
    np.savez(OUT,
             **{f"one.{k}": v for k, v in one.items()},
             **{f"split.{k}": v for k, v in split.items()},
             **{f"chunked.{k}": v for k, v in chunked.items()},
             **params, **split_params,
             one_obs=np.asarray(one_state.obs), split_obs=np.asarray(split_state.obs))
"""


def test_pqn_split_over_four_devices_equals_one_device(tmp_path):
    out = tmp_path / "dp.npz"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run(
        [sys.executable, "-c", f"OUT = {str(out)!r}\n" + textwrap.dedent(CODE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = np.load(out)
    names = [k[len("one.") :] for k in r.files if k.startswith("one.")]
    assert {"episode_return", "td_loss", "q_mean", "episodes"} <= set(names)
    for name in names:
        np.testing.assert_allclose(r[f"split.{name}"], r[f"one.{name}"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(r[f"chunked.{name}"], r[f"one.{name}"], rtol=1e-5, atol=1e-5)
    # The environments were split, not copied: device d holds envs 2d, 2d+1 of the 8.
    np.testing.assert_array_equal(r["split_obs"].reshape(r["one_obs"].shape), r["one_obs"])
    n = len([k for k in r.files if k.startswith("p")])
    for i in range(n):
        one, split = r[f"p{i}"], r[f"s{i}"]
        assert split.shape == (4, *one.shape)
        for d in range(4):  # every device holds the same parameters, the one-device ones
            np.testing.assert_allclose(split[d], one, rtol=1e-5, atol=1e-6)
    # A run on 4 devices finished episodes (the comparison is not of empty metrics).
    assert np.nansum(r["one.episodes"]) > 0


def test_agent_without_axis_name_is_refused():
    import types

    from jaxrl.agents import pqn
    from jaxrl.run import data_parallel

    assert data_parallel.supports_data_parallel(pqn)
    whole_runs_only = types.SimpleNamespace(
        __name__="jaxrl.agents.whole", make_agent=lambda config: None
    )
    assert not data_parallel.supports_data_parallel(whole_runs_only)
    with pytest.raises(ValueError, match="whole cannot split one run"):
        data_parallel.make_agent(whole_runs_only, pqn.Config())
