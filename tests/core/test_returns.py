"""Tests of jaxrl.core.returns against slow references, each other, rlax and hand values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxrl.core import discounted_returns, gae, lambda_returns, n_step_returns, vtrace
from tests import reference as ref

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def rollouts(draw):
    """A random [T, B] rollout with terminations and truncations anywhere."""
    # Few distinct shapes: every new shape costs an XLA compile; values vary freely.
    T = draw(st.sampled_from([1, 5, 9]))
    B = draw(st.sampled_from([1, 3]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    terminated = rng.random((T, B)) < draw(st.sampled_from([0.0, 0.2, 0.5]))
    truncated = (rng.random((T, B)) < draw(st.sampled_from([0.0, 0.2, 0.5]))) & ~terminated
    return dict(
        rewards=rng.normal(size=(T, B)).astype(np.float32),
        values=rng.normal(size=(T, B)).astype(np.float32),
        next_values=rng.normal(size=(T, B)).astype(np.float32),
        terminated=terminated.astype(np.float32),
        done=(terminated | truncated).astype(np.float32),
        log_rhos=rng.normal(scale=0.5, size=(T, B)).astype(np.float32),
        gamma=draw(st.floats(0.0, 1.0)),
        lam=draw(st.floats(0.0, 1.0)),
    )


def columns(x, fn):
    """Applies a per-column reference to every batch column of [T, B] inputs."""
    B = x["rewards"].shape[1]
    outs = [fn({k: (v[:, b] if np.ndim(v) == 2 else v) for k, v in x.items()}) for b in range(B)]
    if isinstance(outs[0], tuple):
        return tuple(np.stack([o[i] for o in outs], axis=1) for i in range(len(outs[0])))
    return np.stack(outs, axis=1)


def args4(x):
    return x["rewards"], x["next_values"], x["terminated"], x["done"]


@SETTINGS
@given(rollouts())
def test_discounted_returns_matches_reference(x):
    got = discounted_returns(*args4(x), x["gamma"])
    want = columns(x, lambda c: ref.discounted_returns(*args4(c), c["gamma"]))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(rollouts(), st.sampled_from([1, 2, 3, 12]))
def test_n_step_returns_matches_reference(x, n):
    got = n_step_returns(*args4(x), x["gamma"], n)
    want = columns(x, lambda c: ref.n_step_returns(*args4(c), c["gamma"], n))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(rollouts())
def test_lambda_returns_matches_reference(x):
    got = lambda_returns(*args4(x), x["gamma"], x["lam"])
    want = columns(x, lambda c: ref.lambda_returns(*args4(c), c["gamma"], c["lam"]))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(rollouts())
def test_gae_matches_reference(x):
    adv, targets = gae(
        x["rewards"],
        x["values"],
        x["next_values"],
        x["terminated"],
        x["done"],
        x["gamma"],
        x["lam"],
    )
    want_adv, want_targets = columns(
        x,
        lambda c: ref.gae(
            c["rewards"],
            c["values"],
            c["next_values"],
            c["terminated"],
            c["done"],
            c["gamma"],
            c["lam"],
        ),
    )
    np.testing.assert_allclose(adv, want_adv, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(targets, want_targets, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(rollouts(), st.floats(0.5, 2.0), st.floats(0.5, 2.0))
def test_vtrace_matches_reference(x, clip_rho, clip_c):
    out = vtrace(
        x["values"],
        x["next_values"],
        x["rewards"],
        x["terminated"],
        x["done"],
        x["log_rhos"],
        x["gamma"],
        x["lam"],
        clip_rho,
        clip_c,
    )
    want_vs, want_adv = columns(
        x,
        lambda c: ref.vtrace(
            c["values"],
            c["next_values"],
            c["rewards"],
            c["terminated"],
            c["done"],
            c["log_rhos"],
            c["gamma"],
            c["lam"],
            clip_rho,
            clip_c,
        ),
    )
    np.testing.assert_allclose(out.vs, want_vs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.pg_advantages, want_adv, rtol=1e-4, atol=1e-4)


def consistent(x):
    """Makes next_values[t] = values[t + 1] inside episodes, as a real rollout has."""
    nv = x["next_values"].copy()
    inside = x["done"][:-1] == 0
    nv[:-1][inside] = x["values"][1:][inside]
    return {**x, "next_values": nv}


@SETTINGS
@given(rollouts())
def test_gae_lambda_one_is_returns_minus_values(x):
    x = consistent(x)
    adv, _ = gae(
        x["rewards"], x["values"], x["next_values"], x["terminated"], x["done"], x["gamma"], 1.0
    )
    returns = discounted_returns(*args4(x), x["gamma"])
    np.testing.assert_allclose(adv, returns - x["values"], rtol=1e-4, atol=1e-4)


@SETTINGS
@given(rollouts())
def test_gae_lambda_zero_is_td_error(x):
    adv, _ = gae(
        x["rewards"], x["values"], x["next_values"], x["terminated"], x["done"], x["gamma"], 0.0
    )
    td = x["rewards"] + x["gamma"] * (1 - x["terminated"]) * x["next_values"] - x["values"]
    np.testing.assert_allclose(adv, td, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(rollouts())
def test_lambda_returns_equal_gae_targets(x):
    x = consistent(x)
    _, targets = gae(
        x["rewards"],
        x["values"],
        x["next_values"],
        x["terminated"],
        x["done"],
        x["gamma"],
        x["lam"],
    )
    got = lambda_returns(*args4(x), x["gamma"], x["lam"])
    np.testing.assert_allclose(got, targets, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(rollouts(), st.sampled_from([0, 3]))
def test_n_step_with_n_at_least_T_is_lambda_one(x, extra):
    T = x["rewards"].shape[0]
    got = n_step_returns(*args4(x), x["gamma"], T + extra)
    want = lambda_returns(*args4(x), x["gamma"], 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(rollouts())
def test_vtrace_on_policy_is_lambda_return(x):
    """With π = μ (log ρ = 0) and no clipping active, V-trace targets are λ-returns."""
    x = consistent(x)
    out = vtrace(
        x["values"],
        x["next_values"],
        x["rewards"],
        x["terminated"],
        x["done"],
        np.zeros_like(x["rewards"]),
        x["gamma"],
        x["lam"],
    )
    want = lambda_returns(*args4(x), x["gamma"], x["lam"])
    np.testing.assert_allclose(out.vs, want, rtol=1e-4, atol=1e-4)


def test_truncated_bootstraps_and_terminated_does_not():
    # Two episodes of length 2: the first truncated at t=1, the second terminated at t=3.
    rewards = jnp.array([1.0, 1.0, 1.0, 1.0])
    values = jnp.zeros(4)
    next_values = jnp.array([0.0, 10.0, 0.0, 10.0])  # V(s') of both final observations is 10
    terminated = jnp.array([0.0, 0.0, 0.0, 1.0])
    done = jnp.array([0.0, 1.0, 0.0, 1.0])
    g = discounted_returns(rewards, next_values, terminated, done, 0.5)
    # truncated: 1 + 0.5 * (1 + 0.5 * 10); terminated: 1 + 0.5 * 1, no bootstrap.
    np.testing.assert_allclose(g, [4.0, 6.0, 1.5, 1.0])
    adv, _ = gae(rewards, values, next_values, terminated, done, 0.5, 1.0)
    np.testing.assert_allclose(adv, [4.0, 6.0, 1.5, 1.0])
    np.testing.assert_allclose(
        n_step_returns(rewards, next_values, terminated, done, 0.5, 2), [4.0, 6.0, 1.5, 1.0]
    )
    # Nothing leaks across the boundary: changing the second episode leaves the first alone.
    g2 = discounted_returns(rewards.at[2:].set(100.0), next_values, terminated, done, 0.5)
    np.testing.assert_allclose(g2[:2], g[:2])


def test_rollout_end_bootstraps():
    g = discounted_returns(jnp.ones(2), jnp.array([0.0, 4.0]), jnp.zeros(2), jnp.zeros(2), 0.5)
    np.testing.assert_allclose(g, [1 + 0.5 * (1 + 2.0), 1 + 2.0])


def test_token_gae_reference_value():
    """TARGETS.md: r = [0, 0, 1], V = [0.5, 0.6, 0.7], γ = 1, λ = 0.95."""
    values = jnp.array([0.5, 0.6, 0.7])
    adv, targets = gae(
        jnp.array([0.0, 0.0, 1.0]),
        values,
        jnp.array([0.6, 0.7, 0.0]),
        jnp.array([0, 0, 1]),
        jnp.array([0, 0, 1]),
        1.0,
        0.95,
    )
    np.testing.assert_allclose(adv, [0.46575, 0.385, 0.3], rtol=1e-6)
    np.testing.assert_allclose(targets, adv + values, rtol=1e-6)


def rlax_case(seed=0, T=7):
    """A [T] rollout with terminations only (rlax has a single discount per step)."""
    rng = np.random.default_rng(seed)
    term = (rng.random(T) < 0.3).astype(np.float32)
    v = rng.normal(size=T + 1).astype(np.float32)  # v[t] = V(s_t), v[T] = bootstrap
    return rng.normal(size=T).astype(np.float32), term, v


def test_against_rlax():
    r, term, v = rlax_case()
    gamma, lam = 0.9, 0.8
    disc = gamma * (1 - term)
    nv = v[1:] * (1 - term)  # after a terminal step V(s') is irrelevant; keep it finite
    ours = gae(r, v[:-1], nv, term, term, gamma, lam)[0]
    theirs = rlax.truncated_generalized_advantage_estimation(r, disc, lam, v)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    ours = lambda_returns(r, v[1:], term, term, gamma, lam)
    theirs = rlax.lambda_returns(r, disc, v[1:], lam)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    log_rhos = np.random.default_rng(1).normal(scale=0.5, size=r.shape).astype(np.float32)
    ours = vtrace(v[:-1], v[1:], r, term, term, log_rhos, gamma, lam)
    errors = rlax.vtrace(v[:-1], v[1:], r, disc, np.exp(log_rhos), lam)  # rlax returns vs − v
    np.testing.assert_allclose(ours.vs - v[:-1], errors, rtol=1e-5, atol=1e-5)
    out = rlax.vtrace_td_error_and_advantage(v[:-1], v[1:], r, disc, np.exp(log_rhos), lam)
    np.testing.assert_allclose(ours.pg_advantages, out.pg_advantage, rtol=1e-5, atol=1e-5)


def all_estimators(r, v, nv, term, done, lr):
    return dict(
        disc=discounted_returns(r, nv, term, done, 0.9),
        nstep=n_step_returns(r, nv, term, done, 0.9, 3),
        lam=lambda_returns(r, nv, term, done, 0.9, 0.7),
        gae=gae(r, v, nv, term, done, 0.9, 0.7),
        vtrace=vtrace(v, nv, r, term, done, lr, 0.9, 0.7),
    )


def test_jit_nojit_vmap_agree():
    rng = np.random.default_rng(0)
    T, B = 6, 4
    r, v, nv, lr = (rng.normal(size=(T, B)).astype(np.float32) for _ in range(4))
    term = (rng.random((T, B)) < 0.2).astype(np.float32)
    done = np.maximum(term, (rng.random((T, B)) < 0.2).astype(np.float32))
    eager = all_estimators(r, v, nv, term, done, lr)
    jitted = jax.jit(all_estimators)(r, v, nv, term, done, lr)
    # vmap over the batch axis moved to the front, on [T] columns.
    mapped = jax.vmap(all_estimators, in_axes=1, out_axes=1)(r, v, nv, term, done, lr)
    for other in (jitted, mapped):
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), eager, other
        )


def test_time_varying_gamma_and_dtypes():
    r = jnp.ones(3)
    g = discounted_returns(r, jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), jnp.array([0.5, 0.1, 1.0]))
    np.testing.assert_allclose(g, [1 + 0.5 * (1 + 0.1), 1.1, 1.0], rtol=1e-6)
    assert g.dtype == jnp.float32
    ints = discounted_returns(
        jnp.array([1, 2]), jnp.array([0, 0]), jnp.array([0, 1]), jnp.array([0, 1]), 1.0
    )
    assert ints.dtype == jnp.float32
    np.testing.assert_allclose(ints, [3.0, 2.0])
    bf = discounted_returns(
        r.astype(jnp.bfloat16), jnp.zeros(3, jnp.bfloat16), jnp.zeros(3), jnp.zeros(3), 0.5
    )
    assert bf.dtype == jnp.bfloat16


def test_gradients_stop_unless_asked():
    r, nv = jnp.ones(3), jnp.array([0.0, 0.0, 2.0])
    z = jnp.zeros(3)
    grad = jax.grad(lambda nv: lambda_returns(r, nv, z, z, 0.9, 0.5).sum())(nv)
    np.testing.assert_array_equal(grad, 0.0)
    f = lambda nv: lambda_returns(r, nv, z, z, 0.9, 0.5, stop_target_gradients=False).sum()
    grad = jax.grad(f)(nv)
    eps = 1e-2
    fd = np.array([(f(nv.at[i].add(eps)) - f(nv.at[i].add(-eps))) / (2 * eps) for i in range(3)])
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-3)


def test_bad_shapes_name_the_argument():
    with pytest.raises(
        ValueError, match=r"`next_values` has shape \(4,\).*`rewards` has shape \(3,\)"
    ):
        discounted_returns(jnp.ones(3), jnp.ones(4), jnp.zeros(3), jnp.zeros(3), 0.9)
    with pytest.raises(ValueError, match=r"`values` has shape \(3, 2\)"):
        gae(jnp.ones(3), jnp.ones((3, 2)), jnp.ones(3), jnp.zeros(3), jnp.zeros(3), 0.9, 0.9)
    with pytest.raises(ValueError, match=r"`rewards` must have rank >= 1"):
        lambda_returns(jnp.float32(1.0), 1.0, 0.0, 0.0, 0.9, 0.9)
    with pytest.raises(ValueError, match=r"`gamma` with shape \(4,\) does not broadcast"):
        discounted_returns(jnp.ones(3), jnp.ones(3), jnp.zeros(3), jnp.zeros(3), jnp.ones(4))
    with pytest.raises(ValueError, match=r"`n` must be a Python int >= 1, got 0"):
        n_step_returns(jnp.ones(3), jnp.ones(3), jnp.zeros(3), jnp.zeros(3), 0.9, 0)
