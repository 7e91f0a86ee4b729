"""TD3: learns the continuous probes (two seeds under vmap), bootstraps truncation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import td3

# Small budgets: a few thousand steps with tiny networks.
PROBE = dict(
    num_envs=4,
    buffer_size=1_000,
    batch_size=64,
    steps_per_update=400,
    hidden_sizes=(32, 32),
    learning_starts=200,
    total_timesteps=4_000,
    gamma=0.9,
    tau=0.05,
    actor_lr=3e-3,
    critic_lr=3e-3,
)


def train(env_id, seeds=1, **overrides):
    """Trains ``seeds`` seeds in one vmapped program; returns what the tests look at."""
    cfg = td3.Config(env_id=env_id, **{**PROBE, **overrides})
    traces = []
    train_fn = td3.make_train(cfg)

    def train_one(key):
        traces.append(1)  # runs only while tracing
        return train_fn(key)

    run = jax.jit(jax.vmap(train_one))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state, metrics = run(keys)
    env, _ = envs.make(env_id)
    return cfg, env, state, metrics, run, keys, traces


def actor_and_q(cfg, learner, obs):
    actor, critic = td3.make_networks(cfg)
    actions = actor.apply(learner.actor_params, obs)
    return actions, critic.apply(learner.critic_params, obs, actions)


def test_learns_probe5_two_seeds_compiles_once_reproducible():
    """Observation × action: μ(s) = ½·obs and Q(s, μ(s)) = 1 for both seeds; the second call
    reuses the compiled program and returns the same numbers."""
    cfg, env, state, metrics, run, keys, traces = train("Probe5Continuous-v0", seeds=2)
    obs = jnp.array([[-1.0], [1.0]])
    for seed in range(2):
        learner = jax.tree.map(lambda x, s=seed: x[s], state.learner)
        actions, q = actor_and_q(cfg, learner, obs)
        np.testing.assert_allclose(actions, env.optimal_action(obs), atol=0.1)
        np.testing.assert_allclose(q.q1, env.analytic_q(obs, actions, cfg.gamma), atol=0.1)
        np.testing.assert_allclose(q.q2, env.analytic_q(obs, actions, cfg.gamma), atol=0.1)
    for name in ("episode_return", "td_loss", "q_mean", "actor_loss", "buffer_fill"):
        assert metrics[name].shape == (2, 10), name
    assert not np.array_equal(metrics["q_mean"][0], metrics["q_mean"][1])
    _, again = run(keys)
    assert len(traces) == 1
    jax.tree.map(np.testing.assert_array_equal, metrics, again)


def test_learns_discounted_values():
    cfg, env, state, *_ = train("Probe3Continuous-v0")
    obs = jnp.array([[0.0], [1.0]])
    learner = jax.tree.map(lambda x: x[0], state.learner)
    actions, q = actor_and_q(cfg, learner, obs)
    np.testing.assert_allclose(q.q1, env.analytic_q(obs, actions, cfg.gamma), atol=0.1)


def test_truncated_episodes_bootstrap():
    """On ProbeTruncation Q = 1/(1−γ) = 2 only if the time limit bootstraps."""
    cfg, env, state, *_ = train("ProbeTruncationContinuous-v0", gamma=0.5)
    learner = jax.tree.map(lambda x: x[0], state.learner)
    _, q = actor_and_q(cfg, learner, jnp.zeros((1, 1)))
    assert float(q.q1[0]) == pytest.approx(2.0, abs=0.1)
    assert abs(float(q.q1[0]) - float(env.truncation_as_terminal_values(0.5, 5).td0)) > 0.25


def test_bad_config_raises_before_jit():
    with pytest.raises(ValueError, match=r"tau = 1.5"):
        td3.Config(tau=1.5)
    with pytest.raises(ValueError, match=r"policy_delay = 0"):
        td3.Config(policy_delay=0)
    with pytest.raises(ValueError, match="discrete"):
        td3.make_agent(td3.Config(env_id="CartPole-v1"))


# Run in a fresh process with 2 host devices (the CLI's default on 2 cores): the 4 runs are
# sharded 2 per device. Each device must run its runs one after another through the
# unbatched program (jaxrl.agents.sequential): batched, the products become batched dots
# and the delayed actor update a select computing both branches (4 seeds were 12x slower
# in wall time than 1 through `jaxrl train td3 --seeds 4`, load 9-13).
_SHARDED_RUNS = """
import re, jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxrl.agents import td3
assert jax.device_count() == 2
cfg = td3.Config(num_envs=2, buffer_size=64, batch_size=8, steps_per_update=16,
                 hidden_sizes=(16, 16), learning_starts=0, total_timesteps=32)
agent = td3.make_agent(cfg)
keys = jax.random.split(jax.random.PRNGKey(0), 4)
states = jax.jit(lambda k: jax.lax.map(lambda kk: agent.init(kk, cfg), k))(keys)
mesh = Mesh(np.array(jax.devices()), ("runs",))
runs, rep = NamedSharding(mesh, P("runs")), NamedSharding(mesh, P())
states = jax.device_put(states, runs)
many = jax.jit(jax.vmap(agent.update, in_axes=(0, None)), in_shardings=(runs, rep))
one = jax.jit(agent.update)
def dots(compiled):
    return sorted(set(re.findall(r"(\\S+\\[[0-9,]*\\])\\S* dot\\(", compiled.as_text())))
hlo_many = many.lower(states, cfg).compile()
hlo_one = one.lower(jax.tree.map(lambda x: x[0], states), cfg).compile()
print("DOTS", dots(hlo_many) == dots(hlo_one), dots(hlo_many), dots(hlo_one))
text = hlo_many.as_text()
print("COLLECTIVES", [c for c in ("all-reduce", "all-gather", "collective-permute", "all-to-all")
                      if c + "(" in text])
out_many = hlo_many(states, cfg)
for i in range(4):
    out_one = one(jax.tree.map(lambda x: x[i], states), cfg)
    row = jax.tree.map(lambda x: x[i], out_many)
    for a, b in zip(jax.tree.leaves(out_one), jax.tree.leaves(row)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
print("EQUAL")
"""


def test_sharded_runs_go_one_after_another_on_each_device():
    import subprocess
    import sys

    from tests.subprocess_env import host_devices_env

    # os.environ carries tests/conftest.py's JAX_DISABLE_MOST_OPTIMIZATIONS=1: the two
    # programs whose numbers are compared compile alike.
    env = host_devices_env(2)
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDED_RUNS],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = {line.split(" ", 1)[0]: line for line in proc.stdout.splitlines()}
    assert lines["DOTS"].startswith("DOTS True"), lines["DOTS"]  # no dot batched over runs
    assert lines["COLLECTIVES"] == "COLLECTIVES []", lines["COLLECTIVES"]
    assert "EQUAL" in lines
