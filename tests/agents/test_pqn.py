"""PQN: learns the probes, Q(λ) targets keep truncation and termination apart, one program
for different traced hyperparameters, config validation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import pqn

PROBE = dict(
    num_envs=8,
    num_steps=16,
    num_epochs=2,
    num_minibatches=2,
    hidden_sizes=(16,),
    learning_rate=1e-2,
    exploration_fraction=0.3,
    eps_end=0.3,  # keep trying the worse action so that its Q is learned too
    gamma=0.9,
    lambda_=0.5,
    reward_scale=1.0,  # the probes' analytic Q is of the unscaled reward
    anneal_lr=False,
)


def train_probe(env_id, total=6_144, **overrides):
    cfg = pqn.Config(env_id=env_id, total_timesteps=total, **{**PROBE, **overrides})
    state, metrics = jax.jit(pqn.make_train(cfg))(jax.random.PRNGKey(0))
    env, _ = envs.make(env_id)
    return cfg, env, state.params, pqn.make_network(cfg).apply, metrics


@pytest.mark.parametrize(
    "env_id, observations",
    [
        ("Probe1-v0", [[0.0]]),
        ("Probe2-v0", [[-1.0], [1.0]]),
        ("Probe3-v0", [[0.0], [1.0]]),
        ("Probe4-v0", [[0.0]]),
        ("Probe5-v0", [[-1.0], [1.0]]),
    ],
)
def test_learns_probe_q_values(env_id, observations):
    # The worse action is tried on ε/2 of the steps only: give it more of them.
    total = 12_288 if env_id in ("Probe4-v0", "Probe5-v0") else 6_144
    cfg, env, params, q, metrics = train_probe(env_id, total=total)
    obs = jnp.array(observations)
    q_values = q(params, obs)
    for a in range(q_values.shape[1]):
        expected = env.analytic_q(obs, jnp.full((len(obs),), a), cfg.gamma)
        np.testing.assert_allclose(q_values[:, a], expected, atol=0.1)
    assert np.isfinite(metrics["td_loss"][-1])


def test_truncated_episodes_bootstrap():
    """On ProbeTruncation Q = 1/(1−γ) = 2 only if the time limit bootstraps."""
    cfg, env, params, q, _ = train_probe("ProbeTruncation-v0", gamma=0.5, total=12_288)
    value = float(q(params, jnp.zeros((1, 1)))[0, 0])
    assert value == pytest.approx(2.0, abs=0.1)
    wrong = env.truncation_as_terminal_values(0.5, 5)
    assert abs(value - float(wrong.td0)) > 0.25


@pytest.mark.parametrize("reward_scale", [1.0, 0.1])
def test_targets_bootstrap_on_truncation_not_termination(reward_scale):
    """compute_targets against a slow loop: truncated steps bootstrap from maxₐ Q of the final
    observation, terminated ones do not, and the λ recursion is cut at both."""
    cfg = pqn.Config(env_id="Probe4-v0", hidden_sizes=(8,))
    net = pqn.make_network(cfg)
    t, b = 6, 3
    k = jax.random.split(jax.random.PRNGKey(4), 3)
    params = net.init(k[0], jnp.zeros((1, 1)))
    terminated = np.zeros((t, b), bool)
    truncated = np.zeros((t, b), bool)
    terminated[1, 0] = terminated[4, 2] = True
    truncated[2, 1] = truncated[3, 0] = True
    zeros = jnp.zeros((t, b))
    rollout = pqn.Rollout(
        obs=jax.random.normal(k[1], (t, b, 1)),
        actions=jnp.zeros((t, b), jnp.int32),
        log_probs=zeros,
        values=zeros,
        rewards=jnp.arange(t * b, dtype=jnp.float32).reshape(t, b) / 10,
        terminated=jnp.asarray(terminated),
        truncated=jnp.asarray(truncated),
        next_obs=jax.random.normal(k[2], (t, b, 1)),
        returned=jnp.asarray(terminated | truncated),
        episode_return=zeros,
        episode_length=zeros,
    )
    gamma, lam = 0.9, 0.7
    targets = np.asarray(pqn.compute_targets(net.apply, params, rollout, gamma, lam, reward_scale))
    v = np.asarray(net.apply(params, rollout.next_obs)).max(-1)
    r = np.asarray(rollout.rewards) * reward_scale
    expected = np.zeros((t, b))
    for j in range(b):
        g = 0.0
        for i in reversed(range(t)):
            if terminated[i, j]:
                g = r[i, j]
            elif truncated[i, j] or i == t - 1:
                g = r[i, j] + gamma * v[i, j]
            else:
                g = r[i, j] + gamma * ((1 - lam) * v[i, j] + lam * g)
            expected[i, j] = g
    np.testing.assert_allclose(targets, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(targets[1, 0], r[1, 0])  # terminal: the reward alone
    assert abs(targets[2, 1] - r[2, 1]) > 1e-3  # truncated: bootstraps


def test_stratified_minibatches_are_a_permutation_per_environment():
    """Each minibatch holds T/M steps of every env; over all minibatches each step once; a
    subset of the environments (one device's) gets exactly its columns of the full arrangement."""
    t, b, m = 8, 4, 4
    x = jnp.arange(t * b).reshape(t, b)
    key = jax.random.PRNGKey(7)
    full = pqn.stratified_minibatches(key, x, m, jnp.arange(b))
    assert full.shape == (m, t // m * b)  # each minibatch flattened time-major
    full = full.reshape(m, t // m, b)
    for j in range(b):
        np.testing.assert_array_equal(np.sort(full[:, :, j].ravel()), np.asarray(x[:, j]))
    part = pqn.stratified_minibatches(key, x[:, 2:], m, jnp.arange(2, 4))
    np.testing.assert_array_equal(part.reshape(m, t // m, 2), full[:, :, 2:])


def test_no_recompile_across_keys_and_traced_hyperparameters():
    """One compiled update serves different keys, learning rates, γ, λ and ε settings."""
    cfg = pqn.Config(
        env_id="Probe5-v0", total_timesteps=256, **{**PROBE, "num_envs": 4, "num_steps": 8}
    )
    agent = pqn.make_agent(cfg)
    traces = []

    def update(states, configs):
        traces.append(1)  # runs only while tracing
        return jax.vmap(agent.update)(states, configs)

    run = jax.jit(update)
    init = jax.jit(jax.vmap(agent.init))

    def configs(lr, gamma, lam, eps):
        pair = jax.tree.map(lambda v: jnp.array([v, v]), cfg)
        return dataclasses.replace(
            pair,
            learning_rate=jnp.array(lr),
            gamma=jnp.array(gamma),
            lambda_=jnp.array(lam),
            eps_end=jnp.array(eps),
        )

    c1 = configs([1e-3, 1e-1], [0.9, 0.5], [0.5, 0.9], [0.1, 0.3])
    c2 = configs([3e-3, 3e-2], [0.8, 0.7], [0.0, 1.0], [0.0, 0.5])
    s1 = init(jax.random.split(jax.random.PRNGKey(0), 2), c1)
    s2 = init(jax.random.split(jax.random.PRNGKey(1), 2), c2)
    out1, m1 = run(s1, c1)
    out2, m2 = run(s2, c2)
    assert len(traces) == 1
    assert m1["td_loss"].shape == (2,) and np.all(np.isfinite(m2["td_loss"]))
    w = jax.tree.leaves(out1.params)
    assert not np.allclose(w[0][0], w[0][1])  # different hyperparameters moved them differently
    # Deterministic: the same inputs give the same numbers.
    again, _ = run(s1, c1)
    jax.tree.map(np.testing.assert_array_equal, out1.params, again.params)


def test_metrics_and_epsilon_schedule():
    cfg = pqn.Config(
        env_id="Probe1-v0",
        total_timesteps=10 * 64,
        eps_end=0.1,
        exploration_fraction=0.5,
        **{k: v for k, v in PROBE.items() if k not in ("eps_end", "exploration_fraction")},
        # 8 envs × 16 steps = 128 steps per update: 5 updates
    )
    _, metrics = jax.jit(pqn.make_train(cfg))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(metrics["epsilon"], [1.0, 0.64, 0.28, 0.1, 0.1], rtol=1e-5)
    # Probe1 episodes last one step: every env finishes one episode per step.
    np.testing.assert_allclose(metrics["episodes"], 128.0)
    np.testing.assert_allclose(metrics["episode_return"], 1.0)


def test_bad_config_raises_before_jit():
    with pytest.raises(ValueError, match=r"num_steps \(64\) must be divisible by num_minibatches"):
        pqn.Config(num_minibatches=5)
    with pytest.raises(ValueError, match=r"lambda_ = 1.5"):
        pqn.Config(lambda_=1.5)
    with pytest.raises(ValueError, match="total_timesteps"):
        pqn.Config(total_timesteps=100)
    with pytest.raises(ValueError, match="continuous"):
        pqn.make_agent(pqn.Config(env_id="Pendulum-v1"))
    with pytest.raises(ValueError, match=r"num_envs \(32\) must be divisible by the number"):
        pqn.make_agent(pqn.Config(), axis_name="data", num_shards=3)
