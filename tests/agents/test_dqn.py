"""DQN: learns the probes (each with one option on), its targets, compiles once, reproducible."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import buffers, envs
from jaxrl.agents import dqn

# Small budgets: every probe run is a few thousand steps with a tiny network.
PROBE = dict(
    num_envs=4,
    buffer_size=1_000,
    batch_size=64,
    train_frequency=1,
    gradient_steps=1,
    steps_per_update=400,
    hidden_sizes=(32, 32),
    learning_starts=200,
    learning_rate=3e-3,
    target_update_interval=10,
    exploration_fraction=0.3,
    eps_end=0.3,  # keep trying the worse action so that its Q is learned too
    gamma=0.9,
)


def train_probe(env_id, total=4_000, **overrides):
    cfg = dqn.Config(env_id=env_id, total_timesteps=total, **{**PROBE, **overrides})
    state, metrics = jax.jit(dqn.make_train(cfg))(jax.random.PRNGKey(0))
    env, _ = envs.make(env_id)
    q = dqn.make_network(cfg).apply
    return cfg, env, state.learner.params, q, metrics


@pytest.mark.parametrize(
    "env_id, observations, option",
    [
        ("Probe1-v0", [[0.0]], {"double": False}),
        ("Probe2-v0", [[-1.0], [1.0]], {"dueling": True}),
        ("Probe3-v0", [[0.0], [1.0]], {"n_step": 2}),
        ("Probe4-v0", [[0.0]], {"prioritized": True}),
        ("Probe5-v0", [[-1.0], [1.0]], {"double": True, "loss": "huber"}),
    ],
)
def test_learns_probe_q_values(env_id, observations, option):
    cfg, env, params, q, metrics = train_probe(env_id, **option)
    obs = jnp.array(observations)
    q_values = q(params, obs)  # [len(obs), A]
    for a in range(q_values.shape[1]):
        actions = jnp.full((len(obs),), a)
        expected = env.analytic_q(obs, actions, cfg.gamma)
        np.testing.assert_allclose(q_values[:, a], expected, atol=0.1)
    assert np.isfinite(metrics["td_loss"][-1])


@pytest.mark.parametrize("n_step", [1])  # n-step windows: test_n_step_targets_cut_at_episode_ends
def test_truncated_episodes_bootstrap(n_step):
    """On ProbeTruncation Q = 1/(1−γ) only if the time limit bootstraps."""
    # More gradient steps: the value is built up through bootstrapping alone.
    cfg, env, params, q, _ = train_probe(
        "ProbeTruncation-v0", gamma=0.5, n_step=n_step, gradient_steps=4
    )
    value = float(q(params, jnp.zeros((1, 1)))[0, 0])
    assert value == pytest.approx(2.0, abs=0.1)
    wrong = env.truncation_as_terminal_values(0.5, 5)
    assert abs(value - float(wrong.td0)) > 0.25


def _sample_batch(n=16):
    """n transitions from random observations; every third truncated, every third terminated."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(3), 4)
    i = jnp.arange(n)
    return buffers.Transition(
        obs=jax.random.uniform(k1, (n, 1), minval=-2.0, maxval=2.0),
        action=jax.random.randint(k2, (n,), 0, 2),
        reward=jax.random.normal(k3, (n,)),
        next_obs=jax.random.uniform(k4, (n, 1), minval=-2.0, maxval=2.0),
        terminated=i % 3 == 2,
        truncated=i % 3 == 1,
    )


@pytest.mark.parametrize("double", [False, True])
def test_one_step_targets(double):
    """y = r + γ(1 − terminated)·Q_target(s', a*): truncated bootstraps, terminated does not;
    Double DQN takes a* from the online network, DQN from the target network."""
    cfg = dqn.Config(env_id="Probe4-v0", hidden_sizes=(8,), double=double, gamma=0.9)
    net = dqn.make_network(cfg)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))
    # A target network that ranks the actions differently from the online one.
    target_params = jax.tree.map(lambda x: -x, params)
    t = _sample_batch()
    td, q_taken = dqn.td_errors(params, target_params, net.apply, t, cfg)

    q_online = np.asarray(net.apply(params, t.obs))
    q_next_online = np.asarray(net.apply(params, t.next_obs))
    q_next_target = np.asarray(net.apply(target_params, t.next_obs))
    selector = q_next_online if double else q_next_target
    # Online and target pick different a* for some s' (else this test could not fail).
    assert np.any(q_next_online.argmax(1) != q_next_target.argmax(1))
    expected = []
    for i in range(len(t.reward)):
        a_star = selector[i].argmax()
        boot = 0.0 if bool(t.terminated[i]) else 0.9 * q_next_target[i, a_star]
        expected.append(float(t.reward[i]) + boot - q_online[i, int(t.action[i])])
    np.testing.assert_allclose(td, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q_taken, q_online[np.arange(16), np.asarray(t.action)], rtol=1e-6)
    # Terminated transitions' targets are their rewards alone; truncated ones bootstrap.
    targets = np.asarray(td + q_taken)
    term, trunc = np.asarray(t.terminated), np.asarray(t.truncated)
    np.testing.assert_allclose(targets[term], np.asarray(t.reward)[term], rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(targets[trunc] - np.asarray(t.reward)[trunc]) > 1e-3)


def test_n_step_targets_cut_at_episode_ends():
    """Windows of 3: y = Σ γᵏ rₖ up to the first episode end, then γᵐ·Q_target(s'_{m−1}, a*)
    unless that end is terminal (slow loop as reference)."""
    gamma = 0.8
    cfg = dqn.Config(env_id="Probe4-v0", hidden_sizes=(8,), n_step=3, gamma=gamma)
    net = dqn.make_network(cfg)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))
    target_params = net.init(jax.random.PRNGKey(1), jnp.zeros((1, 1)))
    key = jax.random.PRNGKey(2)
    n_windows = 4
    obs = jax.random.normal(key, (n_windows, 3, 1))
    next_obs = jax.random.normal(jax.random.fold_in(key, 1), (n_windows, 3, 1))
    rewards = jnp.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    terminated = jnp.array([[0, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]], bool)
    truncated = jnp.array([[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 1]], bool)
    actions = jnp.array([[0, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 1]], jnp.int32)
    t = buffers.Transition(obs, actions, rewards, next_obs, terminated, truncated)
    td, _ = dqn.td_errors(params, target_params, net.apply, t, cfg)

    q0 = np.asarray(net.apply(params, obs[:, 0]))
    q_target = np.asarray(net.apply(target_params, next_obs))
    done = np.asarray(terminated | truncated)
    expected = []
    for i in range(n_windows):
        g, k = 0.0, 0
        while True:
            g += gamma**k * float(rewards[i, k])
            if done[i, k] or k == 2:
                break
            k += 1
        if not bool(terminated[i, k]):
            g += gamma ** (k + 1) * q_target[i, k].max()
        expected.append(g - q0[i, int(actions[i, 0])])
    np.testing.assert_allclose(td, expected, rtol=1e-5, atol=1e-6)


def test_jit_vmap_no_recompile_and_reproducible():
    cfg = dqn.Config(
        env_id="Probe5-v0",
        total_timesteps=600,
        steps_per_update=200,
        num_envs=2,
        buffer_size=200,
        batch_size=16,
        learning_starts=100,
        hidden_sizes=(16,),
        train_frequency=2,
        gradient_steps=2,
    )
    traces = []
    train_fn = dqn.make_train(cfg)

    def train(key):
        traces.append(1)  # runs only while tracing
        return train_fn(key)

    run = jax.jit(jax.vmap(train))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    _, m1 = run(keys)
    _, m2 = run(keys)
    assert len(traces) == 1
    jax.tree.map(np.testing.assert_array_equal, m1, m2)
    for name in ("episode_return", "episode_length", "td_loss", "q_mean", "epsilon", "buffer_fill"):
        assert m1[name].shape == (2, 3), name
    np.testing.assert_allclose(m1["buffer_fill"][:, -1], 1.0)
    assert "env_steps" not in m1  # a column of metrics.csv already; once is enough
    # 4 env steps per iteration, 2 learning steps from env step 100 on (iteration 25 of 50)
    np.testing.assert_allclose(m1["grad_steps"][0], [52, 152, 252])
    assert not np.array_equal(m1["q_mean"][0], m1["q_mean"][1])  # seeds differ
    # The cache size above is 1 by construction (equal inputs); this one can fail: one trace
    # of update for other keys and other traced hyperparameters.
    from tests.agents.on_policy_checks import assert_one_trace

    assert_one_trace(
        dqn, cfg, learning_rate=1e-3, gamma=0.9, tau=0.5, eps_start=0.5, max_grad_norm=1.0
    )


def test_epsilon_follows_the_schedule():
    cfg = dqn.Config(eps_start=1.0, eps_end=0.1, exploration_fraction=0.5, total_timesteps=1_000)
    eps = dqn.epsilon_at(jnp.array([0, 250, 500, 900]), cfg)
    np.testing.assert_allclose(eps, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def test_bad_config_raises_before_jit():
    with pytest.raises(ValueError, match=r"loss = 'l1'"):
        dqn.Config(loss="l1")
    with pytest.raises(ValueError, match=r"gamma = 1.5"):
        dqn.Config(gamma=1.5)
    with pytest.raises(ValueError, match=r"steps_per_update \(1000\) must be a multiple"):
        dqn.Config(num_envs=3)
    with pytest.raises(ValueError, match="continuous"):
        dqn.make_agent(dqn.Config(env_id="Pendulum-v1"))


def test_numeric_fields_are_traced_in_one_program():
    """Learning rate, γ and the clipping norm (inf: none) are leaves: one program runs both."""
    cfg = dqn.Config(
        env_id="Probe2-v0",
        total_timesteps=200,
        steps_per_update=100,
        num_envs=2,
        buffer_size=100,
        batch_size=8,
        learning_starts=20,
        hidden_sizes=(8,),
    )
    agent = dqn.make_agent(cfg)
    pair = jax.tree.map(lambda x: jnp.array([x, x]), cfg)
    configs = dataclasses.replace(
        pair,
        learning_rate=jnp.array([1e-3, 1e-1]),
        gamma=jnp.array([0.9, 0.5]),
        max_grad_norm=jnp.array([jnp.inf, 0.1]),
    )
    states = jax.vmap(agent.init, in_axes=(None, 0))(jax.random.PRNGKey(0), configs)
    states, metrics = jax.jit(jax.vmap(agent.update))(states, configs)
    assert metrics["td_loss"].shape == (2,)
    # The rate lives in the optax state (inject_hyperparams), one per configuration.
    np.testing.assert_allclose(states.learner.opt_state.hyperparams["learning_rate"], [1e-3, 1e-1])
    # Each configuration of the one program equals its own run with Python numbers.
    for i, (lr, gamma, norm) in enumerate([(1e-3, 0.9, math.inf), (1e-1, 0.5, 0.1)]):
        one = dataclasses.replace(cfg, learning_rate=lr, gamma=gamma, max_grad_norm=norm)
        agent_one = dqn.make_agent(one)
        state, m = jax.jit(agent_one.update)(agent_one.init(jax.random.PRNGKey(0), one), one)
        np.testing.assert_allclose(m["td_loss"], metrics["td_loss"][i], rtol=1e-5)
        for a, b in zip(
            jax.tree.leaves(state.learner.params),
            jax.tree.leaves(states.learner.params),
            strict=True,
        ):
            np.testing.assert_allclose(a, b[i], rtol=1e-5, atol=1e-6)


def test_vmapped_seeds_run_one_after_another_on_cpu_same_numbers():
    # On one CPU device the off-policy update maps runs one after another under vmap (faster
    # there than a batched update): each seed of jax.vmap(train) is exactly its own single run.
    cfg = dqn.Config(
        env_id="Probe5-v0",
        total_timesteps=400,
        steps_per_update=200,
        num_envs=2,
        buffer_size=200,
        batch_size=16,
        learning_starts=100,
        hidden_sizes=(16,),
        train_frequency=2,
        gradient_steps=2,
    )
    train = dqn.make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    _, batched = jax.jit(jax.vmap(train))(keys)
    one = jax.jit(train)
    for i in range(3):
        _, single = one(keys[i])
        for name in batched:
            np.testing.assert_array_equal(batched[name][i], single[name], err_msg=name)
