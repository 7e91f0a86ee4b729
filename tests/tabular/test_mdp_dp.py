"""FiniteMDP validation and dynamic programming, checked against slow NumPy loops."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.tabular import (
    FiniteMDP,
    bellman_residual,
    expected_rewards,
    finite_horizon_evaluation,
    iterative_policy_evaluation,
    make_task,
    policy_evaluation,
    policy_iteration,
    q_from_values,
    random_mdp,
    value_iteration,
)

# ---------------------------------------------------------------- NumPy references


def np_backup(p, r, gamma, terminal, v):
    """Q(s, a) = Σₛ' P(s'|s,a) [R(s,a,s') + γ (1 − terminal(s')) V(s')], 0 in terminal s."""
    q = (p * (r + gamma * np.where(terminal, 0.0, v)[None, None, :])).sum(-1)
    return np.where(terminal[:, None], 0.0, q)


def np_value_iteration(p, r, gamma, terminal, tol=1e-10):
    """Textbook value iteration in float64."""
    v = np.zeros(p.shape[0])
    while True:
        new = np_backup(p, r, gamma, terminal, v).max(-1)
        if np.max(np.abs(new - v)) < tol:
            return new
        v = new


def np_policy_value(p, r, gamma, terminal, pi, horizon=None):
    """V^π by repeated expectation backups from 0 (horizon None: until convergence)."""
    v = np.zeros(p.shape[0])
    steps = 0
    while horizon is None or steps < horizon:
        new = (pi * np_backup(p, r, gamma, terminal, v)).sum(-1)
        steps += 1
        if horizon is None and np.max(np.abs(new - v)) < 1e-12:
            return new
        v = new
    return v


def arrays(mdp):
    return (
        np.asarray(mdp.transitions, np.float64),
        np.asarray(mdp.rewards, np.float64),
        float(mdp.discount),
        np.asarray(mdp.terminal),
    )


# ---------------------------------------------------------------- validation


def negative(p):
    p = p.copy()
    p[0, 0] = [0.6, 0.5, -0.1]  # sums to 1
    return p


def good():
    p = np.zeros((3, 2, 3))
    p[:, :, 0] = 0.5
    p[:, :, 1] = 0.5
    return p, np.ones((3, 2))


def test_create_broadcasts_rewards_and_defaults():
    p, r = good()
    mdp = FiniteMDP.create(p, r, 0.9)
    assert mdp.rewards.shape == (3, 2, 3)
    np.testing.assert_allclose(expected_rewards(mdp), r)
    np.testing.assert_array_equal(mdp.initial, [1.0, 0.0, 0.0])
    assert not np.asarray(mdp.terminal).any() and np.asarray(mdp.action_mask).all()
    assert mdp.num_states == 3 and mdp.num_actions == 2


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p, r, kw: (p * 0.9, r, kw), r"P\[s=0, a=0, :\] sums to 0\.9"),
        (lambda p, r, kw: (negative(p), r, kw), r"non-negative.*P\[s=0, a=0, s'=2\] = -0\.1"),
        (lambda p, r, kw: (p, np.ones((3, 3)), kw), r"`rewards` has shape \(3, 3\).*\(3, 2\)"),
        (lambda p, r, kw: (p[:, :, :2], r, kw), r"`transitions` must have shape \[S, A, S\]"),
        (lambda p, r, kw: (p, r, {**kw, "initial": np.ones(4) / 4}), r"`initial` has shape \(4,\)"),
        (lambda p, r, kw: (p, r, {**kw, "initial": [0.5, 0.2, 0.2]}), r"`initial`.*sum 0\.9"),
        (lambda p, r, kw: (p, r, {**kw, "terminal": [True, False]}), r"`terminal` has shape"),
        (lambda p, r, kw: (p, r, {**kw, "action_mask": np.ones((3, 3), bool)}), r"`action_mask`"),
        (
            lambda p, r, kw: (p, r, {**kw, "action_mask": np.zeros((3, 2), bool)}),
            r"non-terminal state 0 with no available action",
        ),
        (
            lambda p, r, kw: (p, r, {**kw, "reward_std": -np.ones((3, 2))}),
            r"`reward_std` must be >= 0",
        ),
        (lambda p, r, kw: (p, r * np.nan, kw), r"`rewards` must be finite"),
        (
            lambda p, r, kw: (p, r, {**kw, "discount": 1.5}),
            r"`discount` must be a scalar in \[0, 1\]",
        ),
    ],
)
def test_bad_mdps_raise_errors_that_say_which(change, match):
    p, r = good()
    p, r, kw = change(p, r, {"discount": 0.9})
    discount = kw.pop("discount")
    with pytest.raises(ValueError, match=match):
        FiniteMDP.create(p, r, discount, **kw)


def test_negative_probability_is_reported_even_if_rows_sum_to_one():
    p, r = good()
    p[1, 1] = [1.2, -0.2, 0.0]
    with pytest.raises(ValueError, match=r"P\[s=1, a=1, s'=1\] = -0\.2"):
        FiniteMDP.create(p, r, 0.9)


# ---------------------------------------------------------------- dynamic programming


@functools.cache
def _make_batch(n):
    return jax.jit(jax.vmap(lambda k, g: random_mdp(k, 6, 3, g, 3, 1)))


def random_mdps(n, discount=0.9, seed=0):
    """n random MDPs with S = 6, A = 3, 3 successors per (s, a) and one terminal state."""
    keys = jax.random.split(jax.random.key(seed), n)
    return _make_batch(n)(keys, jnp.full(n, discount))


def one(mdps, i=0):
    return jax.tree.map(lambda x: x[i], mdps)


@functools.cache
def _vi(tol):
    return jax.jit(jax.vmap(lambda m: value_iteration(m, tol)))


def test_random_mdp_is_valid_and_matches_its_branching():
    mdps = random_mdps(16)
    for i in range(4):
        mdp = one(mdps, i)
        FiniteMDP.create(
            mdp.transitions, mdp.rewards, mdp.discount, mdp.initial, mdp.terminal
        )  # validates
        live = np.asarray(mdp.transitions)[:-1]
        assert ((live > 0).sum(-1) == 3).all()


def test_value_iteration_matches_numpy_and_policy_iteration_on_random_mdps():
    mdps = random_mdps(16)
    vi = _vi(1e-6)(mdps)
    pi = jax.vmap(policy_iteration)(mdps)
    np.testing.assert_allclose(vi.values, pi.values, atol=2e-5)
    np.testing.assert_allclose(vi.q_values, pi.q_values, atol=2e-5)
    for i in range(3):
        mdp = one(mdps, i)
        np.testing.assert_allclose(vi.values[i], np_value_iteration(*arrays(mdp)), atol=2e-5)
    # The policies agree wherever the best action is not a near-tie.
    q = np.asarray(vi.q_values)
    gap = np.sort(q, -1)[..., -1] - np.sort(q, -1)[..., -2]
    clear = gap > 1e-3
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(np.asarray(vi.policy)[clear], np.asarray(pi.policy)[clear])


@pytest.mark.parametrize("tol", [1e-2, 1e-5])
def test_bellman_optimality_residual_of_value_iteration_is_below_tol(tol):
    mdps = random_mdps(16, discount=0.95, seed=1)
    vi = _vi(tol)(mdps)
    residual = jax.vmap(bellman_residual)(mdps, vi.values)
    assert (np.asarray(residual) <= tol).all()
    assert (np.asarray(vi.delta) < tol).all()
    # The residual of Q* and of V* under its own greedy policy are small too.
    assert (np.asarray(jax.vmap(bellman_residual)(mdps, vi.q_values)) <= 2 * tol).all()
    v_pi = jax.vmap(bellman_residual)(mdps, vi.values, vi.policy)
    assert (np.asarray(v_pi) <= 2 * tol).all()
    # A non-optimal V has a large residual.
    assert (np.asarray(jax.vmap(bellman_residual)(mdps, vi.values + 1.0)) > 0.04).all()


def test_exact_and_iterative_policy_evaluation_agree_with_numpy():
    mdps = random_mdps(16, discount=0.8, seed=2)
    logits = jax.random.normal(jax.random.key(3), (16, 6, 3))
    pis = jax.nn.softmax(logits)
    exact = jax.vmap(policy_evaluation)(mdps, pis)
    iterative = jax.vmap(lambda m, p: iterative_policy_evaluation(m, p, 1e-7))(mdps, pis)
    np.testing.assert_allclose(exact, iterative.values, atol=1e-5)
    mdp = one(mdps)
    ref = np_policy_value(*arrays(mdp), np.asarray(pis[0], np.float64))
    np.testing.assert_allclose(exact[0], ref, atol=1e-5)
    # V^π is the fixed point of T^π: residual ≈ 0.
    assert float(bellman_residual(mdp, exact[0], pis[0])) < 1e-5


def test_finite_horizon_evaluation_matches_numpy_and_converges():
    mdp = one(random_mdps(16, discount=0.7, seed=4))
    pi = jax.nn.one_hot(jnp.array([0, 1, 2, 0, 1, 2]), 3)
    for h in (1, 3):
        ref = np_policy_value(*arrays(mdp), np.asarray(pi, np.float64), horizon=h)
        np.testing.assert_allclose(finite_horizon_evaluation(mdp, pi, h), ref, atol=1e-5)
    # Integer actions mean the same policy; a long horizon reaches V^π.
    long = finite_horizon_evaluation(mdp, jnp.array([0, 1, 2, 0, 1, 2]), 200)
    np.testing.assert_allclose(long, policy_evaluation(mdp, pi), atol=1e-5)


def test_q_from_values_zero_in_terminal_states():
    mdp = one(random_mdps(16))
    q = q_from_values(mdp, jnp.arange(6.0))
    np.testing.assert_array_equal(q[-1], 0.0)


def test_jit_and_vmap_agree_with_single_calls():
    mdps = random_mdps(16, seed=5)
    batched = _vi(1e-6)(mdps)
    for i in range(3):
        single = value_iteration(one(mdps, i), 1e-6)
        np.testing.assert_allclose(batched.values[i], single.values, atol=1e-6)


# ---------------------------------------------------------------- known solutions


def test_known_optimal_values_of_the_book_problems():
    cliff = value_iteration(make_task("CliffWalking").mdp)
    assert float(cliff.values[36]) == -13.0  # Sutton & Barto ex. 6.6: optimal path, 13 steps
    windy = value_iteration(make_task("WindyGridworld").mdp)
    assert float(windy.values[30]) == -15.0  # Sutton & Barto ex. 6.5: 15 steps
    bias = make_task("MaximizationBias").mdp
    vi = value_iteration(bias)
    np.testing.assert_allclose(vi.q_values[2, :2], [-0.1, 0.0], atol=1e-6)  # Q*(A, left/right)
    assert int(vi.policy[2]) == 1


def test_frozen_lake_success_rate_within_the_time_limit():
    """Gymnasium's FrozenLake-4x4 (slippery): the optimal policy succeeds ≈ 74% within 100 steps."""
    task = make_task("FrozenLake-4x4", discount=1.0)
    vi = value_iteration(task.mdp, 1e-7)
    success = finite_horizon_evaluation(task.mdp, vi.policy, 100)[0]
    assert abs(float(success) - 0.74) < 0.005
    # Without a time limit the same policy succeeds more often (≈ 0.82).
    assert float(vi.values[0]) > float(success) + 0.05
    # A non-slippery lake is solved in 6 steps: γ⁵ discounting of the reward 1.
    det = value_iteration(make_task("FrozenLake-4x4-nonslippery", discount=0.9).mdp)
    np.testing.assert_allclose(det.values[0], 0.9**5, rtol=1e-6)
