"""Tests for the TRPO trust region: CG, Fisher-vector products, natural step, line search."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxrl.core import trust_region as tr

S, D, A = 5, 3, 4  # states, features, actions of the tiny categorical policy


def _spd(n, seed, cond_shift=1.0):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, n))
    return m @ m.T / n + cond_shift * np.eye(n), rng.normal(size=n)


def _relative_residual(a, x, b):
    x = np.asarray(x, np.float64)
    return np.linalg.norm(a @ x - b) / np.linalg.norm(b)


def test_cg_solves_random_spd_system():
    a, b = _spd(20, seed=0)
    matvec = functools.partial(jnp.matmul, jnp.asarray(a, jnp.float32))
    res = tr.conjugate_gradient(matvec, jnp.asarray(b, jnp.float32), max_iters=60)
    assert _relative_residual(a, res.x, b) < 1e-5
    np.testing.assert_allclose(res.x, np.linalg.solve(a, b), rtol=1e-4, atol=1e-5)
    # The tracked residual agrees with the true one.
    np.testing.assert_allclose(res.residual_norm, np.linalg.norm(a @ res.x - b), atol=1e-4)


def test_cg_stops_early_on_few_distinct_eigenvalues():
    # CG terminates in at most (number of distinct eigenvalues) steps in exact arithmetic.
    eig = np.repeat([1.0, 2.0, 5.0], [7, 7, 6])
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(20, 20)))
    a = (q * eig) @ q.T
    b = np.random.default_rng(2).normal(size=20)
    matvec = functools.partial(jnp.matmul, jnp.asarray(a, jnp.float32))
    res = tr.conjugate_gradient(
        matvec, jnp.asarray(b, jnp.float32), max_iters=50, residual_tol=1e-8
    )
    assert int(res.iterations) <= 5
    assert _relative_residual(a, res.x, b) < 1e-4


def test_cg_one_iteration_is_exact_line_minimisation():
    a, b = _spd(6, seed=3)
    matvec = functools.partial(jnp.matmul, jnp.asarray(a, jnp.float32))
    res = tr.conjugate_gradient(matvec, jnp.asarray(b, jnp.float32), max_iters=1)
    expected = (b @ b) / (b @ a @ b) * b
    np.testing.assert_allclose(res.x, expected, rtol=1e-5)
    assert int(res.iterations) == 1


def test_cg_jit_matches_eager_and_zero_rhs():
    a, b = _spd(8, seed=4)
    matvec = functools.partial(jnp.matmul, jnp.asarray(a, jnp.float32))
    b = jnp.asarray(b, jnp.float32)
    eager = tr.conjugate_gradient(matvec, b, max_iters=8)
    jitted = jax.jit(functools.partial(tr.conjugate_gradient, matvec, max_iters=8))(b)
    np.testing.assert_allclose(eager.x, jitted.x, rtol=1e-6, atol=1e-7)
    zero = tr.conjugate_gradient(matvec, jnp.zeros(8), max_iters=8)
    assert int(zero.iterations) == 0 and np.all(np.asarray(zero.x) == 0)


# ----- a tiny linear-softmax policy over S states -----


def _policy_setup(seed=0):
    rng = np.random.default_rng(seed)
    obs = jnp.asarray(rng.normal(size=(S, D)), jnp.float32)
    params = {
        "w": jnp.asarray(0.5 * rng.normal(size=(D, A)), jnp.float32),
        "b": jnp.asarray(0.1 * rng.normal(size=(A,)), jnp.float32),
    }
    actions = jnp.asarray(rng.integers(0, A, size=S), jnp.int32)
    advantages = jnp.asarray(rng.normal(size=S), jnp.float32)
    return obs, params, actions, advantages


def _log_probs(params, obs):
    return jax.nn.log_softmax(obs @ params["w"] + params["b"], axis=-1)


def _mean_kl(params, obs, old_log_probs):
    """KL(π_old ‖ π_params) averaged over states."""
    log_p = _log_probs(params, obs)
    return jnp.mean(jnp.sum(jnp.exp(old_log_probs) * (old_log_probs - log_p), axis=-1))


def _surrogate(params, obs, actions, advantages, old_log_probs):
    """E[π(a|s)/π_old(a|s) · Â] over the sampled (s, a)."""
    log_p = jnp.take_along_axis(_log_probs(params, obs), actions[:, None], axis=-1)[:, 0]
    old = jnp.take_along_axis(old_log_probs, actions[:, None], axis=-1)[:, 0]
    return jnp.mean(jnp.exp(log_p - old) * advantages)


def _problem(seed=0):
    obs, params, actions, advantages = _policy_setup(seed)
    old_log_probs = jax.lax.stop_gradient(_log_probs(params, obs))
    kl_fn = functools.partial(_mean_kl, obs=obs, old_log_probs=old_log_probs)
    surrogate_fn = functools.partial(
        _surrogate, obs=obs, actions=actions, advantages=advantages, old_log_probs=old_log_probs
    )
    return params, obs, kl_fn, surrogate_fn


def _explicit_fisher(params, obs):
    """E_s E_{a~π}[∇log π(a|s) ∇log π(a|s)ᵀ], by the Jacobian of all log-probs."""
    flat, unravel = ravel_pytree(params)
    jac = np.asarray(jax.jacobian(lambda f: _log_probs(unravel(f), obs))(flat), np.float64)
    probs = np.exp(np.asarray(_log_probs(params, obs), np.float64))
    fisher = np.zeros((flat.size, flat.size))
    for s in range(S):
        for a in range(A):
            fisher += probs[s, a] * np.outer(jac[s, a], jac[s, a])
    return fisher / S


def test_fvp_equals_hessian_and_fisher_times_v():
    params, obs, kl_fn, _ = _problem()
    flat, unravel = ravel_pytree(params)
    hessian = np.asarray(jax.hessian(lambda f: kl_fn(unravel(f)))(flat), np.float64)
    fisher = _explicit_fisher(params, obs)
    np.testing.assert_allclose(hessian, fisher, atol=1e-5)  # at θ = θ_old they coincide
    damping = 0.05
    fvp = tr.fisher_vector_product(kl_fn, params, damping=damping)
    rng = np.random.default_rng(7)
    for _ in range(3):
        v = rng.normal(size=flat.size)
        got = fvp(jnp.asarray(v, jnp.float32))
        np.testing.assert_allclose(got, hessian @ v + damping * v, rtol=1e-4, atol=1e-5)
    jitted = jax.jit(lambda v: tr.fisher_vector_product(kl_fn, params, damping)(v))
    np.testing.assert_allclose(jitted(jnp.asarray(v, jnp.float32)), got, rtol=1e-5, atol=1e-6)


def test_natural_step_direction_and_quadratic_kl():
    params, obs, kl_fn, surrogate_fn = _problem(seed=1)
    damping, max_kl = 0.1, 0.01
    flat, _ = ravel_pytree(params)
    f = _explicit_fisher(params, obs) + damping * np.eye(flat.size)
    g = ravel_pytree(jax.grad(surrogate_fn)(params))[0]
    fvp = tr.fisher_vector_product(kl_fn, params, damping)
    step, info = tr.natural_gradient_step(g, fvp, max_kl, cg_iters=flat.size + 5)
    step = np.asarray(step, np.float64)
    x = np.linalg.solve(f, np.asarray(g, np.float64))
    expected = np.sqrt(2 * max_kl / (x @ f @ x)) * x
    np.testing.assert_allclose(step, expected, rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(0.5 * step @ f @ step, max_kl, rtol=1e-3)
    np.testing.assert_allclose(info["quadratic_kl"], max_kl, rtol=1e-3)
    np.testing.assert_allclose(info["expected_improvement"], np.asarray(g) @ step, rtol=1e-4)
    assert float(info["expected_improvement"]) > 0


def test_natural_step_zero_gradient_gives_zero_step():
    params, _, kl_fn, _ = _problem()
    n = ravel_pytree(params)[0].size
    step, info = tr.natural_gradient_step(
        jnp.zeros(n), tr.fisher_vector_product(kl_fn, params), 0.01
    )
    assert np.all(np.asarray(step) == 0) and float(info["expected_improvement"]) == 0


@pytest.mark.parametrize("use_jit", [False, True])
def test_trpo_step_improves_surrogate_within_kl(use_jit):
    params, _, kl_fn, surrogate_fn = _problem(seed=2)
    max_kl = 0.01
    step_fn = functools.partial(tr.trpo_step, surrogate_fn=surrogate_fn, kl_fn=kl_fn, max_kl=max_kl)
    if use_jit:
        step_fn = jax.jit(step_fn)
    new_params, metrics = step_fn(params)
    old_s, new_s = float(surrogate_fn(params)), float(surrogate_fn(new_params))
    assert new_s > old_s
    kl = float(kl_fn(new_params))
    assert 0 < kl <= max_kl
    assert float(metrics["accepted"]) == 1.0
    np.testing.assert_allclose(metrics["kl"], kl, rtol=1e-4)
    np.testing.assert_allclose(metrics["improvement"], new_s - old_s, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(metrics["surrogate"], old_s, rtol=1e-6)
    assert set(metrics) >= {"kl", "improvement", "num_backtracks", "accepted", "cg_residual"}
    assert all(v.dtype == jnp.float32 and v.shape == () for v in metrics.values())


def test_trpo_step_jit_matches_eager():
    params, _, kl_fn, surrogate_fn = _problem(seed=3)
    step_fn = functools.partial(tr.trpo_step, surrogate_fn=surrogate_fn, kl_fn=kl_fn, max_kl=0.02)
    eager, m_eager = step_fn(params)
    jitted, m_jit = jax.jit(step_fn)(params)
    # Float32 rounding differs between fused and op-by-op code; CG amplifies it slightly.
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert float(m_eager["num_backtracks"]) == float(m_jit["num_backtracks"])


def _reference_line_search(params, step, surrogate_fn, kl_fn, max_kl, ratio, max_backtracks):
    """Plain Python loop over the shrink factors."""
    flat, unravel = ravel_pytree(params)
    old = float(surrogate_fn(params))
    for k in range(max_backtracks):
        cand = unravel(flat + ratio**k * step)
        if float(surrogate_fn(cand)) > old and float(kl_fn(cand)) <= max_kl:
            return k, cand
    return max_backtracks, params


def test_line_search_backtracks_to_first_acceptable_step():
    params, _, kl_fn, surrogate_fn = _problem(seed=4)
    g = ravel_pytree(jax.grad(surrogate_fn)(params))[0]
    max_kl = 0.005
    # A gradient step 50× too long: the first few candidates exceed the KL bound.
    step, _ = tr.natural_gradient_step(g, tr.fisher_vector_product(kl_fn, params), 50 * max_kl)
    res = tr.backtracking_line_search(params, step, surrogate_fn, kl_fn, max_kl, 0.5, 10)
    k_ref, params_ref = _reference_line_search(params, step, surrogate_fn, kl_fn, max_kl, 0.5, 10)
    assert 1 <= k_ref < 10
    assert int(res.num_backtracks) == k_ref and bool(res.accepted)
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(params_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert float(res.kl) <= max_kl
    np.testing.assert_allclose(res.kl, kl_fn(res.params), rtol=1e-5)


def test_line_search_rejects_worsening_step():
    params, _, kl_fn, surrogate_fn = _problem(seed=5)
    g = ravel_pytree(jax.grad(surrogate_fn)(params))[0]
    res = jax.jit(
        functools.partial(
            tr.backtracking_line_search, surrogate_fn=surrogate_fn, kl_fn=kl_fn, max_kl=1.0
        )
    )(params, -0.1 * g)
    assert not bool(res.accepted)
    assert int(res.num_backtracks) == 10
    assert float(res.improvement) == 0.0 and float(res.kl) == 0.0
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_line_search_rejects_step_beyond_kl_bound():
    params, _, kl_fn, surrogate_fn = _problem(seed=6)
    g = ravel_pytree(jax.grad(surrogate_fn)(params))[0]
    step = 10.0 * g / jnp.linalg.norm(g)  # improves the surrogate, but far outside δ
    max_kl = 1e-3
    res = tr.backtracking_line_search(
        params, step, surrogate_fn, kl_fn, max_kl, backtrack_ratio=0.9, max_backtracks=3
    )
    flat = ravel_pytree(params)[0]
    assert float(kl_fn(ravel_pytree(params)[1](flat + 0.81 * step))) > max_kl
    assert not bool(res.accepted) and int(res.num_backtracks) == 3
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda p, s, k: tr.trpo_step(p, s, k, max_kl=0.0), "max_kl"),
        (lambda p, s, k: tr.trpo_step(p, s, k, max_kl=0.01, damping=-1.0), "damping"),
        (lambda p, s, k: tr.trpo_step(p, s, k, 0.01, backtrack_ratio=1.0), "backtrack_ratio"),
        (lambda p, s, k: tr.trpo_step(p, s, k, 0.01, max_backtracks=0), "max_backtracks"),
        (lambda p, s, k: tr.trpo_step(p, s, k, 0.01, cg_iters=0), "cg_iters"),
        (lambda p, s, k: tr.trpo_step(p, s, k, 0.01, cg_iters=2.5), "cg_iters"),
        (lambda p, s, k: tr.backtracking_line_search(p, jnp.zeros(3), s, k, 0.01), "step_flat"),
        (lambda p, s, k: tr.fisher_vector_product(k, p)(jnp.zeros(3)), "`v`"),
    ],
)
def test_bad_inputs_raise_value_error_naming_argument(call, name):
    params, _, kl_fn, surrogate_fn = _problem()
    with pytest.raises(ValueError, match=name):
        call(params, surrogate_fn, kl_fn)


def test_public_names_have_docstrings():
    for name in tr.__all__:
        assert getattr(tr, name).__doc__, name


def test_mean_policy_kl_matches_closed_forms_and_holds_the_old_policy_fixed():
    import distrax

    rng = np.random.default_rng(3)
    old_logits, new_logits = rng.normal(size=(2, S, A)).astype(np.float32)
    old = tr.distribution_params(distrax.Categorical(logits=old_logits))
    p = jax.nn.softmax(old_logits)
    want = np.sum(p * (jax.nn.log_softmax(old_logits) - jax.nn.log_softmax(new_logits)), -1)
    got = tr.mean_policy_kl(old, distrax.Categorical(logits=new_logits))
    np.testing.assert_allclose(got, want.mean(), rtol=1e-5)
    # Gaussian: KL(N(0, 1) ‖ N(1, 2²)) = log 2 + (1 + 1) / 8 − ½ per dimension.
    gauss = distrax.MultivariateNormalDiag(jnp.zeros((S, 2)), jnp.ones((S, 2)))
    shifted = distrax.MultivariateNormalDiag(jnp.ones((S, 2)), 2.0 * jnp.ones((S, 2)))
    got = tr.mean_policy_kl(tr.distribution_params(gauss), shifted)
    np.testing.assert_allclose(got, 2 * (np.log(2.0) + 2 / 8 - 0.5), rtol=1e-5)
    # The old distribution is a constant: no gradient reaches it.
    grad = jax.grad(lambda lg: tr.mean_policy_kl({"logits": lg}, distrax.Categorical(new_logits)))
    np.testing.assert_array_equal(grad(jnp.asarray(old_logits)), 0.0)
