"""Tests for jaxrl.core.sequence.kl_estimate: reference values, unbiasedness, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxrl.core import sequence


def ref_kl_estimate(log_p, log_p_ref, kind):
    out = np.zeros(np.shape(log_p))
    for i in np.ndindex(out.shape):
        d = float(log_p[i] - log_p_ref[i])
        out[i] = {"k1": d, "k2": d * d / 2, "k3": math.exp(-d) - 1 + d}[kind]
    return out


@pytest.mark.parametrize("kind, expected", [("k1", 0.5), ("k2", 0.125), ("k3", 0.1065307)])
def test_targets_at_delta_one_half(kind, expected):
    got = sequence.kl_estimate(jnp.array([0.5]), jnp.array([0.0]), kind)
    np.testing.assert_allclose(got, [expected], rtol=1e-6)
    assert got.dtype == jnp.float32


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_matches_loop_jit_vmap_and_gradients(kind):
    rng = np.random.default_rng(0)
    lp = rng.normal(size=(3, 5)).astype(np.float32) - 2.0
    lr = rng.normal(size=(3, 5)).astype(np.float32) - 2.0
    got = sequence.kl_estimate(lp, lr, kind)
    np.testing.assert_allclose(got, ref_kl_estimate(lp, lr, kind), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(sequence.kl_estimate, static_argnums=2)(lp, lr, kind), got)
    vm = jax.vmap(sequence.kl_estimate, in_axes=(0, 0, None))(lp, lr, kind)
    np.testing.assert_allclose(vm, got, rtol=1e-6)
    f = lambda a, b: jnp.sum(sequence.kl_estimate(a, b, kind))
    check_grads(f, (jnp.asarray(lp), jnp.asarray(lr)), 1, modes=["rev"], eps=1e-3, rtol=1e-2)
    if kind != "k1":
        assert np.all(np.asarray(got) >= 0)


def test_k3_precise_for_small_delta():
    # e^(−δ) − 1 + δ ≈ δ²/2 for tiny δ; the naive float32 formula returns 0 or noise here
    d = jnp.array([1e-4, -3e-4], jnp.float32)
    np.testing.assert_allclose(sequence.kl_estimate(d, jnp.zeros(2), "k3"), d**2 / 2, rtol=1e-3)


def test_k1_and_k3_unbiased_for_categoricals():
    # Exact expectations over x ~ p (no sampling): E_p[k1] = E_p[k3] = KL(p‖q).
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.2, 0.2, 0.6])
    kl = float(np.sum(p * np.log(p / q)))
    log_p, log_q = jnp.log(jnp.asarray(p, jnp.float32)), jnp.log(jnp.asarray(q, jnp.float32))
    for kind in ("k1", "k3"):
        expectation = float(jnp.sum(p * sequence.kl_estimate(log_p, log_q, kind)))
        np.testing.assert_allclose(expectation, kl, rtol=1e-5)
    # k2 is biased, but close when p and q are close
    q_near = p * np.exp(0.05 * np.array([1.0, -1.0, 0.5]))
    q_near /= q_near.sum()
    kl_near = float(np.sum(p * np.log(p / q_near)))
    k2 = float(jnp.sum(p * sequence.kl_estimate(log_p, jnp.log(q_near.astype(np.float32)), "k2")))
    assert k2 != pytest.approx(kl_near, rel=1e-6) and k2 == pytest.approx(kl_near, rel=0.1)


def test_broadcast_and_errors():
    lp = jnp.zeros((2, 4))
    got = sequence.kl_estimate(lp, jnp.array([[0.5], [-0.5]]), "k1")
    np.testing.assert_allclose(got, np.repeat([[-0.5], [0.5]], 4, axis=1))
    with pytest.raises(ValueError, match="`kind`"):
        sequence.kl_estimate(lp, lp, "k4")
    with pytest.raises(ValueError, match="`log_p_ref`"):
        sequence.kl_estimate(lp, jnp.zeros(2), "k3")
    assert sequence.kl_estimate.__doc__
