"""Two processes on this machine (jax.distributed on a loopback coordinator, gloo CPU
collectives) compute what one process computes: a small sweep with whole runs per device,
and one PQN run split across the two processes' devices."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np

from jaxrl.agents import ppo, pqn
from jaxrl.run import sweep

ROOT = Path(__file__).resolve().parents[2]

PPO = dict(
    total_timesteps=4 * 16 * 4,
    num_envs=4,
    num_steps=16,
    num_minibatches=2,
    num_epochs=1,
    hidden_sizes=(8,),
)
PQN = dict(
    env_id="CartPole-v1",
    total_timesteps=4 * 16 * 4,
    num_envs=4,
    num_steps=16,
    num_minibatches=4,
    num_epochs=1,
    hidden_sizes=(16,),
    learning_rate=1e-3,
)
SEEDS = [0, 1, 2, 3]

WORKER = """
    import sys
    import jax
    import numpy as np

    port, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{{port}}", num_processes=2, process_id=pid,
        initialization_timeout=120,
    )
    assert jax.process_count() == 2 and len(jax.devices()) == 2, jax.devices()
    from jax.experimental import multihost_utils
    from jax.sharding import NamedSharding, PartitionSpec
    from jaxrl.agents import ppo, pqn
    from jaxrl.run import data_parallel, sweep

    res = sweep(ppo, ppo.Config(**{ppo_cfg!r}), seeds={seeds!r}, progress=False, log=lambda m: None)
    mesh = data_parallel.make_mesh()
    key = jax.make_array_from_process_local_data(
        NamedSharding(mesh, PartitionSpec()), np.asarray(jax.random.PRNGKey(0))
    )
    _, metrics = jax.jit(data_parallel.make_train(pqn, pqn.Config(**{pqn_cfg!r}), mesh))(key)
    metrics = multihost_utils.process_allgather(metrics, tiled=True)
    if pid == 0:
        np.savez(out, **{{"sweep." + k: v for k, v in res.metrics.items()}},
                 **{{"pqn." + k: np.asarray(v) for k, v in metrics.items()}})
    print("done", pid, flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    out = tmp_path / "two.npz"
    code = textwrap.dedent(WORKER.format(ppo_cfg=PPO, pqn_cfg=PQN, seeds=SEEDS))
    env = dict(os.environ)  # tests/conftest.py's XLA_FLAGS, no device count: one per process
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, port, str(i), str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    logs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=480)
            logs.append((p.returncode, stdout, stderr[-3000:]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, (code_, stdout, stderr) in enumerate(logs):
        assert code_ == 0 and f"done {i}" in stdout, (i, code_, stderr)

    two = np.load(out)
    one = sweep(ppo, ppo.Config(**PPO), seeds=SEEDS, progress=False, log=lambda m: None)
    assert one.metrics["episode_return"].shape == (4, 4)
    for name, values in one.metrics.items():
        np.testing.assert_allclose(two[f"sweep.{name}"], values, rtol=1e-5, atol=1e-6, err_msg=name)
    _, single = jax.jit(pqn.make_train(pqn.Config(**PQN)))(jax.random.PRNGKey(0))
    for name, values in single.items():
        np.testing.assert_allclose(two[f"pqn.{name}"], values, rtol=1e-5, atol=1e-5, err_msg=name)
    assert np.nansum(two["pqn.episodes"]) > 0
