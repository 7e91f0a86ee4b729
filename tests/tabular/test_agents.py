"""Tabular TD agents: hand-checked targets, equivalences, convergence, Cliff Walking, probes."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.exploration import epsilon_greedy_probs
from jaxrl.run import stack_configs
from jaxrl.tabular import (
    TABULAR_AGENTS,
    Config,
    FiniteMDP,
    QTables,
    TabularEnv,
    TabularTask,
    double_q_update,
    expected_sarsa_update,
    finite_horizon_evaluation,
    greedy_path,
    greedy_policy,
    greedy_probs,
    make_task,
    make_train,
    policy_evaluation,
    policy_probs,
    q_estimate,
    q_from_values,
    q_learning_update,
    random_mdp,
    sarsa_update,
    value_iteration,
)

# ---------------------------------------------------------------- single-step targets

Q = jnp.array([[1.0, 2.0], [3.0, 5.0]])
ALL = jnp.ones((2, 2), bool)


def tables(q=Q, q2=None):
    return QTables(q=q, q2=jnp.zeros_like(q) if q2 is None else q2, visits=jnp.zeros_like(q))


@pytest.mark.parametrize("terminated", [False, True])
def test_three_single_step_targets_by_hand(terminated):
    # Transition s=0, a=1, r=1 → s'=1 with γ = 0.5 and α = 0.5; Q(0, 1) = 2.
    discount = 0.0 if terminated else 0.5
    args = (0, 1, 1.0, discount, 1)
    q_learning = q_learning_update(tables(), *args, ALL, 0.5).q[0, 1]
    sarsa = sarsa_update(tables(), *args, 0, 0.5).q[0, 1]  # a' = 0
    expected = expected_sarsa_update(tables(), *args, jnp.array([0.25, 0.75]), 0.5).q[0, 1]
    if terminated:  # target = r = 1 for all three
        np.testing.assert_allclose([q_learning, sarsa, expected], [1.5, 1.5, 1.5])
    else:
        # targets: 1 + 0.5·max(3, 5) = 3.5; 1 + 0.5·Q(1, 0) = 2.5; 1 + 0.5·(0.25·3 + 0.75·5) = 3.25
        np.testing.assert_allclose([q_learning, sarsa, expected], [2.75, 2.25, 2.625])
    # Only Q(0, 1) moves.
    moved = q_learning_update(tables(), *args, ALL, 0.5).q
    np.testing.assert_array_equal(moved.at[0, 1].set(2.0), Q)


def test_q_learning_max_skips_unavailable_actions():
    mask = jnp.array([[True, True], [True, False]])  # action 1 unavailable in s'=1
    new = q_learning_update(tables(), 0, 1, 1.0, 0.5, 1, mask, 0.5).q[0, 1]
    np.testing.assert_allclose(new, 2.0 + 0.5 * (1.0 + 0.5 * 3.0 - 2.0))


def test_double_q_learning_by_hand():
    q2 = jnp.array([[0.0, 0.4], [4.0, -1.0]])
    seen = set()
    for i in range(16):
        new = double_q_update(tables(Q, q2), jax.random.key(i), 0, 1, 1.0, 0.5, 1, ALL, 0.5)
        if not np.array_equal(new.q, Q):
            # Q^A picks argmax Q^A(1) = 1, Q^B evaluates it: target 1 + 0.5·(−1) = 0.5.
            np.testing.assert_allclose(new.q[0, 1], 2.0 + 0.5 * (0.5 - 2.0))
            np.testing.assert_array_equal(new.q2, q2)
            seen.add("A")
        else:
            # Q^B picks argmax Q^B(1) = 0, Q^A evaluates it: target 1 + 0.5·3 = 2.5.
            np.testing.assert_allclose(new.q2[0, 1], 0.4 + 0.5 * (2.5 - 0.4))
            seen.add("B")
    assert seen == {"A", "B"}


def test_sarsa_and_expected_sarsa_with_greedy_policy_equal_q_learning():
    rng = np.random.default_rng(0)
    q = jnp.asarray(rng.normal(size=(64, 5, 3)), jnp.float32)
    s, s_next = jnp.asarray(rng.integers(0, 5, (2, 64)), jnp.int32)
    a = jnp.asarray(rng.integers(0, 3, 64), jnp.int32)
    r = jnp.asarray(rng.normal(size=64), jnp.float32)
    mask = jnp.ones((5, 3), bool)

    def three(q, s, a, r, s_next, epsilon):
        t = tables(q)
        probs = policy_probs(q[s_next], mask[s_next], "epsilon-greedy", epsilon, 1.0)
        greedy = greedy_policy(q[s_next])
        return (
            q_learning_update(t, s, a, r, 0.9, s_next, mask, 0.1).q,
            sarsa_update(t, s, a, r, 0.9, s_next, greedy, 0.1).q,
            expected_sarsa_update(t, s, a, r, 0.9, s_next, probs, 0.1).q,
        )

    batched = jax.jit(jax.vmap(three, (0, 0, 0, 0, 0, None)))
    ql, sa, ex = batched(q, s, a, r, s_next, 0.0)
    np.testing.assert_allclose(sa, ql, rtol=1e-6)
    np.testing.assert_allclose(ex, ql, rtol=1e-6)
    # With ε > 0 Expected SARSA's target averages in non-greedy actions: strictly lower.
    ql, _, ex = batched(q, s, a, r, s_next, 0.3)
    idx = (jnp.arange(64), s, a)
    assert (np.asarray(ex[idx]) < np.asarray(ql[idx])).all()


def test_policy_probs_with_and_without_action_masks():
    q = jnp.array([[1.0, 3.0, 3.0, 0.0], [5.0, 1.0, 2.0, 0.0]])
    full = jnp.ones((2, 4), bool)
    np.testing.assert_allclose(
        policy_probs(q, full, "epsilon-greedy", 0.2, 1.0), epsilon_greedy_probs(q, 0.2)
    )
    mask = jnp.array([[True, True, False, False], [False, True, True, True]])
    probs = policy_probs(q, mask, "epsilon-greedy", 0.2, 1.0)
    np.testing.assert_allclose(probs, [[0.1, 0.9, 0, 0], [0, 0.2 / 3, 0.8 + 0.2 / 3, 0.2 / 3]])
    soft = policy_probs(q, mask, "boltzmann", 0.0, 2.0)
    np.testing.assert_allclose(soft[0, :2], jax.nn.softmax(jnp.array([0.5, 1.5])), rtol=1e-6)
    np.testing.assert_array_equal(soft[:, 2:][0], 0.0)
    np.testing.assert_allclose(greedy_probs(q), [[0, 0.5, 0.5, 0], [1, 0, 0, 0]])


# ---------------------------------------------------------------- whole agents

EPISODES = 8000


def random_task() -> TabularTask:
    """S = 4 (one terminal), A = 2, γ = 0.5, rewards N(0, 0.25), every live state a start,
    episodes cut after 3 steps: a third of the updates bootstrap through a truncation."""
    mdp = random_mdp(jax.random.key(3), 4, 2, 0.5, 2, 1)
    live = ~np.asarray(mdp.terminal)
    mdp = mdp.replace(initial=jnp.asarray(live / live.sum(), jnp.float32), rewards=mdp.rewards / 2)
    env = TabularEnv(mdp, "RandomMDP", 3)
    return TabularTask("RandomMDP", mdp, env, env.default_params, None)


RANDOM = random_task()


@functools.cache
def trainer(algorithm: str, n: int = 1):
    """One compiled program per algorithm on RANDOM; tests vary the traced hyperparameters."""
    config = Config(
        algorithm=algorithm,
        env="RandomMDP",
        num_episodes=EPISODES,
        gamma=0.5,
        step_size="visit-count",
        n=n,
        track_greedy_value=False,
    )
    return config, jax.jit(jax.vmap(make_train(config, RANDOM)))


def traced(config, **values):
    """``config`` with the given numbers, every traced field a float32 array (one jit signature)."""
    config = dataclasses.replace(config, **values)
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), config)


def run(algorithm, n=1, seeds=4, **values):  # always 4 seeds: one compiled program per algorithm
    """Trains ``seeds`` runs of ``algorithm`` on RANDOM with the given traced numbers."""
    config, train = trainer(algorithm, n)
    batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (seeds,)), traced(config, **values))
    return train(jax.random.split(jax.random.key(0), seeds), batched)


def test_q_learning_with_decaying_step_sizes_converges_to_q_star():
    state, _ = run("q-learning", epsilon=1.0, alpha=1.0, alpha_power=1.0)
    q_star = value_iteration(RANDOM.mdp, 1e-7).q_values
    err = np.abs(np.asarray(state.tables.q) - np.asarray(q_star)[None]).max(axis=(1, 2))
    assert (err < 0.05).all(), err
    assert (np.asarray(state.tables.visits)[:, :3] > 500).all()


def test_n_step_sarsa_converges_to_the_value_of_its_behaviour_policy():
    # With ε = 1 the behaviour is uniform, so on-policy n-step SARSA learns Q^uniform.
    # n = 2 with 3-step episodes: both the regular update and the end-of-episode flush run.
    state, _ = run("n-step-sarsa", n=2, epsilon=1.0, alpha=1.0, alpha_power=1.0)
    uniform = jnp.full((4, 2), 0.5)
    q_pi = q_from_values(RANDOM.mdp, policy_evaluation(RANDOM.mdp, uniform))
    err = np.abs(np.asarray(state.tables.q) - np.asarray(q_pi)[None]).max(axis=(1, 2))
    assert (err < 0.05).all(), err


# ---------------------------------------------------------------- probes: truncation vs termination


def probe_task() -> TabularTask:
    """State 0 loops on itself (episodes cut by the 3-step time limit: truncated); state 1
    goes to the terminal state 2 (terminated). Action 0 pays 1, action 1 pays 0.5; γ = 0.5;
    episodes start in 0 or 1 with probability 1/2 each."""
    p = np.zeros((3, 2, 3))
    p[0, :, 0] = p[1, :, 2] = p[2, :, 2] = 1.0
    r = np.zeros((3, 2, 3))
    r[:2, 0], r[:2, 1] = 1.0, 0.5
    mdp = FiniteMDP.create(p, r, 0.5, initial=[0.5, 0.5, 0.0], terminal=[False, False, True])
    env = TabularEnv(mdp, "Probe", 3)
    return TabularTask("Probe", mdp, env, env.default_params, None)


PROBE = probe_task()
# Bootstrapping through the truncation in state 0: Q(0, a) = r(a) + γ·V(0) with V(0) = 2 for
# the greedy policy (off-policy targets) and V(0) = 1.5 for the uniform behaviour (on-policy
# targets with ε = 1); no bootstrapping from the terminal state: Q(1, a) = r(a).
PROBE_Q = {
    "off-policy": [[2.0, 1.5], [1.0, 0.5]],
    "on-policy": [[1.75, 1.25], [1.0, 0.5]],
}


@functools.cache
def probe_trainer(algorithm: str):
    """(config, jitted single-seed train, jitted vmapped train), always called with a traced cfg."""
    config = TABULAR_AGENTS[algorithm].config(
        env="RandomMDP",
        num_episodes=600,
        gamma=0.5,
        epsilon=1.0,
        step_size="visit-count",
        alpha=1.0,
        alpha_power=0.6,
        n=2 if algorithm == "n-step-sarsa" else 1,
    )
    train = make_train(config, PROBE)
    return config, jax.jit(train), jax.jit(jax.vmap(train))


@pytest.mark.parametrize("algorithm", list(TABULAR_AGENTS))
def test_truncation_bootstraps_and_termination_does_not(algorithm):
    config, train, _ = probe_trainer(algorithm)
    state, metrics = train(jax.random.key(0), traced(config))
    q = np.asarray(q_estimate(state.tables, algorithm))
    kind = "off-policy" if algorithm in ("q-learning", "double-q") else "on-policy"
    np.testing.assert_allclose(q[:2], PROBE_Q[kind], atol=0.04)  # on/off-policy differ by 0.25
    lengths = np.asarray(metrics["episode_length"])
    assert set(np.unique(lengths)) == {1, 3}  # terminated after 1 step, truncated after 3
    # Greedy-value metric: action 0 everywhere; 1 + γ + γ² from state 0, 1 from state 1.
    np.testing.assert_allclose(metrics["greedy_value"][-1], (1.75 + 1.0) / 2, atol=1e-6)


def test_q_learning_with_boltzmann_exploration_learns_the_greedy_values():
    # Off-policy: any behaviour that keeps trying both actions gives Q-learning's answer.
    config = Config(
        algorithm="q-learning",
        env="RandomMDP",
        num_episodes=600,
        gamma=0.5,
        exploration="boltzmann",
        schedule="linear",
        temperature=5.0,
        temperature_end=0.5,
        step_size="visit-count",
        alpha=1.0,
        alpha_power=0.6,
    )
    state, metrics = jax.jit(make_train(config, PROBE))(jax.random.key(2))
    np.testing.assert_allclose(state.tables.q[:2], PROBE_Q["off-policy"], atol=0.02)
    # As τ falls the behaviour turns greedy: more reward per step late than early.
    rate = np.asarray(metrics["episode_return"]) / np.asarray(metrics["episode_length"])
    assert rate[-100:].mean() > rate[:100].mean() + 0.05


def test_expected_sarsa_with_epsilon_zero_is_q_learning():
    """Same keys, ε = 0: the greedy expectation is the max, so the runs are identical."""
    runs = {}
    for algorithm in ("q-learning", "expected-sarsa"):
        config, train, _ = probe_trainer(algorithm)
        runs[algorithm] = train(jax.random.key(1), traced(config, epsilon=0.0))
    (a, ma), (b, mb) = runs["q-learning"], runs["expected-sarsa"]
    np.testing.assert_array_equal(a.tables.q, b.tables.q)
    np.testing.assert_array_equal(ma["episode_return"], mb["episode_return"])
    # With ε = 1 they learn different things (see the probe test).


def test_vmap_over_seeds_and_step_sizes_matches_single_runs():
    config, train, batched_train = probe_trainer("q-learning")
    # Two configurations, one program: jaxrl.run.stack_configs stacks the traced fields.
    hp = stack_configs([traced(config, alpha=0.1), traced(config, alpha=1.0)])
    assert hp.alpha.shape == (2,) and hp.algorithm == "q-learning"
    keys = jax.random.split(jax.random.key(5), 2)
    batched, metrics = batched_train(keys, hp)
    for i in range(2):
        one, one_metrics = train(keys[i], jax.tree.map(lambda x: x[i], hp))
        np.testing.assert_allclose(batched.tables.q[i], one.tables.q, atol=1e-6)
        np.testing.assert_allclose(
            metrics["episode_return"][i], one_metrics["episode_return"], atol=1e-6
        )
    # α·N^(−0.6) with α = 0.1 is still far from Q(0, 0) = 2; α = 1 has converged.
    assert float(batched.tables.q[0, 0, 0]) < 1.6
    assert abs(float(batched.tables.q[1, 0, 0]) - 2.0) < 0.02


# ---------------------------------------------------------------- Cliff Walking (S&B ex. 6.6)

CLIFF = make_task("CliffWalking")


def edge_cells(path):
    """How many cells of the row just above the cliff (columns 1–10) a path visits."""
    return sum(s // 12 == 2 and 1 <= s % 12 <= 10 for s in path)


def test_cliff_walking_sarsa_walks_safe_q_learning_walks_optimal():
    seeds, episodes = 16, 200
    keys = jax.random.split(jax.random.key(0), seeds)
    results = {}
    for algorithm in ("sarsa", "q-learning"):
        config = Config(
            algorithm=algorithm,
            num_episodes=episodes,
            alpha=0.5,
            epsilon=0.1,
            track_greedy_value=False,
        )
        state, metrics = jax.jit(jax.vmap(make_train(config)))(keys)
        policies = greedy_policy(state.tables.q, CLIFF.mdp.action_mask)
        returns = jax.vmap(lambda p: finite_horizon_evaluation(CLIFF.mdp, p, 1000)[36])(policies)
        paths = [greedy_path(CLIFF.mdp, p) for p in np.asarray(policies)]
        online = float(np.asarray(metrics["episode_return"])[:, 50:].mean())
        results[algorithm] = (np.asarray(returns), paths, online)
    q_returns, q_paths, q_online = results["q-learning"]
    s_returns, s_paths, s_online = results["sarsa"]
    # Q-learning's greedy path runs along the edge: 13 steps, return −13, in every run.
    np.testing.assert_array_equal(q_returns, -13.0)
    assert all(edge_cells(p) == 10 for p in q_paths)
    # SARSA's greedy path keeps away from the edge; most runs reach the goal that way
    # (with α = 0.5 a few runs' greedy policies still loop at the end of training).
    reached = [p[-1] == 47 for p in s_paths]
    assert np.mean(reached) >= 0.6
    assert all(edge_cells(p) <= 1 for p, ok in zip(s_paths, reached, strict=True) if ok)
    assert all(
        r in (-15.0, -17.0, -19.0, -21.0) for r, ok in zip(s_returns, reached, strict=True) if ok
    )
    # Exploring next to the cliff costs Q-learning online: its average return is lower.
    assert q_online < s_online - 10.0, (q_online, s_online)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("algorithm", "td-lambda", r"Config.algorithm = 'td-lambda'.*'q-learning'"),
        ("env", "Pong", r"Config.env = 'Pong'.*'CliffWalking'"),
        ("alpha", 0.0, r"Config.alpha = 0.0.*\(0.0, 1.0\]"),
        ("epsilon", 1.5, r"Config.epsilon = 1.5.*\[0.0, 1.0\]"),
        ("gamma", -0.1, r"Config.gamma = -0.1"),
        ("temperature", 0.0, r"Config.temperature = 0.0.*> 0"),
        ("num_episodes", 0, r"Config.num_episodes = 0.*integer > 0"),
        ("n", 3, r"Config.n = 3.*n-step-sarsa"),
        ("exploration", "ucb", r"Config.exploration = 'ucb'.*'boltzmann'"),
        ("step_size", "adam", r"Config.step_size = 'adam'"),
        ("schedule", "cosine", r"Config.schedule = 'cosine'.*'linear'"),
        ("max_steps_per_episode", -1, r"Config.max_steps_per_episode = -1.*>= 0"),
        ("alpha_power", 0.5, r"Config.alpha_power = 0.5.*\(0.5, 1.0\]"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        Config(**{field: value})


def test_registry_and_the_run_contract():
    assert set(TABULAR_AGENTS) == {
        "q-learning",
        "sarsa",
        "expected-sarsa",
        "double-q",
        "n-step-sarsa",
    }
    config = TABULAR_AGENTS["double-q"].config(env="MaximizationBias", num_episodes=7)
    assert config.algorithm == "double-q" and config.gamma == 1.0
    agent = TABULAR_AGENTS["double-q"].make_agent(config)
    assert (agent.num_updates, agent.steps_per_update) == (7, 1)
    # Static fields are pytree metadata, numbers are leaves.
    leaves = jax.tree.leaves(config)
    assert len(leaves) == 9 and all(isinstance(x, float) for x in leaves)


def test_get_algorithm_gives_the_registry_entry_with_its_config_class():
    from jaxrl.agents import get_algorithm

    entry = get_algorithm("expected-sarsa")
    assert entry is TABULAR_AGENTS["expected-sarsa"]
    assert entry.__name__ == "jaxrl.tabular.expected-sarsa"
    cfg = entry.Config(env="MaximizationBias", alpha=0.2)
    assert cfg.algorithm == "expected-sarsa" and cfg.alpha == 0.2
    assert isinstance(cfg, Config) and entry.Config is get_algorithm("expected-sarsa").Config
    # The same program as Config(algorithm=...): one traced leaf set, algorithm static.
    plain = Config(algorithm="expected-sarsa", env="MaximizationBias", alpha=0.2)
    assert jax.tree.structure(cfg).num_leaves == jax.tree.structure(plain).num_leaves
    with pytest.raises(ValueError, match="alpha"):
        entry.Config(alpha=-1.0)
