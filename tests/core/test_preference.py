"""Tests of jaxrl.core.preference against hand-computed numbers and NumPy references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxrl.core import DPO_KINDS, bradley_terry_loss, dpo_loss, simpo_loss


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def dpo_reference(pc, pr, rc, rr, beta, kind, eps=0.0, nll_coef=0.0, lengths=None):
    """Slow NumPy loop over pairs, float64."""
    total = 0.0
    for i in range(len(pc)):
        d = (pc[i] - rc[i]) - (pr[i] - rr[i])
        if kind == "sigmoid":
            ell = -(1 - eps) * log_sigmoid(beta * d) - eps * log_sigmoid(-beta * d)
        elif kind == "robust":
            ell = (-(1 - eps) * log_sigmoid(beta * d) + eps * log_sigmoid(-beta * d)) / (
                1 - 2 * eps
            )
        elif kind == "hinge":
            ell = max(0.0, 1.0 - beta * d)
        else:
            ell = (d - 1.0 / (2.0 * beta)) ** 2
        length = 1.0 if lengths is None else lengths[i]
        total += ell + nll_coef * (-pc[i] / length)
    return total / len(pc)


def random_logps(seed, n=6):
    rng = np.random.default_rng(seed)
    return [(-rng.uniform(1, 20, n)).astype(np.float32) for _ in range(4)]


def test_sigmoid_is_ln2_when_policy_equals_reference():
    pc, pr, _, _ = random_logps(0)
    loss, m = dpo_loss(pc, pr, pc, pr, beta=0.3)
    np.testing.assert_allclose(loss, 0.6931472, atol=1e-6)
    assert m["margin"] == 0.0 and m["accuracy"] == 0.0


def test_hand_computed_cases():
    # one pair with Δ = 1: (−3 − (−4)) − (−5 − (−5)) = 1, β = 0.5
    args = (np.array([-3.0]), np.array([-5.0]), np.array([-4.0]), np.array([-5.0]))
    ls = math.log(1 + math.exp(-0.5))  # −log σ(0.5) = 0.474077
    expected = {
        ("sigmoid", 0.0): ls,
        ("sigmoid", 0.1): 0.9 * ls + 0.1 * math.log(1 + math.exp(0.5)),
        ("robust", 0.1): (0.9 * ls - 0.1 * math.log(1 + math.exp(0.5))) / 0.8,
        ("hinge", 0.0): 0.5,
        ("ipo", 0.0): 0.0,  # (Δ − 1/(2β))² = (1 − 1)²
    }
    for (kind, eps), value in expected.items():
        loss, _ = dpo_loss(*args, beta=0.5, kind=kind, label_smoothing=eps)
        np.testing.assert_allclose(loss, value, rtol=1e-6, err_msg=kind)
    loss, _ = dpo_loss(*args, beta=0.25, kind="ipo")  # (1 − 2)² = 1
    np.testing.assert_allclose(loss, 1.0, rtol=1e-6)
    loss, _ = dpo_loss(*args, beta=3.0, kind="hinge")  # max(0, 1 − 3) = 0
    np.testing.assert_allclose(loss, 0.0, atol=1e-7)
    # RPO: + α · (−log π(y_c)) / |y_c| = 2 · 3 / 4
    loss, m = dpo_loss(*args, beta=0.5, nll_coef=2.0, chosen_lengths=np.array([4.0]))
    np.testing.assert_allclose(loss, ls + 1.5, rtol=1e-6)
    np.testing.assert_allclose(m["nll_loss"], 0.75, rtol=1e-6)


def test_half_label_smoothing_ignores_which_response_was_chosen():
    # ε = 0.5 says a label is a coin flip: the loss is symmetric in the pair
    pc, pr, rc, rr = random_logps(1)
    a, _ = dpo_loss(pc, pr, rc, rr, beta=0.7, label_smoothing=0.5)
    b, _ = dpo_loss(pr, pc, rr, rc, beta=0.7, label_smoothing=0.5)
    c, _ = dpo_loss(pc, pr, rc, rr, beta=0.7, label_smoothing=0.3)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert abs(float(c) - float(a)) > 1e-3


@pytest.mark.parametrize("kind", DPO_KINDS)
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_matches_reference_and_finite_differences(kind, eps):
    if kind in ("hinge", "ipo") and eps:
        return
    pc, pr, rc, rr = random_logps(2)
    lengths = np.arange(1, 7, dtype=np.float32) + 2
    beta, alpha = 0.4, 0.3
    loss, _ = dpo_loss(pc, pr, rc, rr, beta, kind, eps, alpha, lengths)
    ref = dpo_reference(
        *(x.astype(np.float64) for x in (pc, pr, rc, rr)), beta, kind, eps, alpha, lengths
    )
    np.testing.assert_allclose(loss, ref, rtol=1e-5)

    grads = jax.grad(
        lambda a, b: dpo_loss(a, b, rc, rr, beta, kind, eps, alpha, lengths)[0], argnums=(0, 1)
    )(pc, pr)
    h = 1e-4
    for which, g in enumerate(grads):
        for i in range(len(pc)):
            args = [pc.astype(np.float64), pr.astype(np.float64)]
            up, down = [a.copy() for a in args], [a.copy() for a in args]
            up[which][i] += h
            down[which][i] -= h
            fd = (
                dpo_reference(*up, rc, rr, beta, kind, eps, alpha, lengths)
                - dpo_reference(*down, rc, rr, beta, kind, eps, alpha, lengths)
            ) / (2 * h)
            np.testing.assert_allclose(g[i], fd, rtol=1e-3, atol=1e-5)


def test_no_gradient_into_the_reference():
    pc, pr, rc, rr = random_logps(3)
    g = jax.grad(lambda a, b: dpo_loss(pc, pr, a, b, 0.1)[0], argnums=(0, 1))(rc, rr)
    assert np.all(np.asarray(g[0]) == 0) and np.all(np.asarray(g[1]) == 0)


def test_metrics():
    pc, pr = np.array([-2.0, -6.0]), np.array([-4.0, -5.0])
    rc, rr = np.array([-3.0, -5.0]), np.array([-4.0, -4.0])
    _, m = dpo_loss(pc, pr, rc, rr, beta=0.5)
    # implicit rewards: chosen 0.5·[1, −1], rejected 0.5·[0, −1]
    np.testing.assert_allclose(m["rewards_chosen"], 0.0)
    np.testing.assert_allclose(m["rewards_rejected"], -0.25)
    np.testing.assert_allclose(m["margin"], 0.25)
    np.testing.assert_allclose(m["accuracy"], 0.5)
    np.testing.assert_allclose(m["logps_chosen"], -4.0)
    np.testing.assert_allclose(m["logps_rejected"], -4.5)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-30, 0), min_size=4, max_size=4), st.floats(0.01, 2.0))
def test_swapping_the_pair_shifts_the_sigmoid_loss_by_beta_delta(v, beta):
    # −log σ(x) − (−log σ(−x)) = −x for each pair
    pc, pr, rc, rr = (np.array([x], np.float32) for x in v)
    a, _ = dpo_loss(pc, pr, rc, rr, beta)
    b, _ = dpo_loss(pr, pc, rr, rc, beta)
    delta = (v[0] - v[2]) - (v[1] - v[3])
    np.testing.assert_allclose(a - b, -beta * delta, rtol=1e-4, atol=1e-4)


def test_jit_and_vmap_agree():
    pc, pr, rc, rr = random_logps(4)
    eager, _ = dpo_loss(pc, pr, rc, rr, 0.2)
    jitted, _ = jax.jit(dpo_loss, static_argnames="kind")(pc, pr, rc, rr, 0.2)
    np.testing.assert_allclose(eager, jitted, rtol=1e-6)
    betas = jnp.array([0.1, 0.2, 0.5])
    swept = jax.vmap(lambda b: dpo_loss(pc, pr, rc, rr, b)[0])(betas)
    for b, s in zip(betas, swept, strict=True):
        np.testing.assert_allclose(s, dpo_loss(pc, pr, rc, rr, float(b))[0], rtol=1e-6)


def test_simpo_hand_case_and_gradient():
    # h = 2·(−6/3) − 2·(−8/2) − 0.5 = 3.5
    loss, m = simpo_loss(
        np.array([-6.0]), np.array([-8.0]), np.array([3.0]), np.array([2.0]), beta=2.0, gamma=0.5
    )
    np.testing.assert_allclose(loss, math.log(1 + math.exp(-3.5)), rtol=1e-6)
    np.testing.assert_allclose(m["margin"], 4.0, rtol=1e-6)
    g = jax.grad(lambda a: simpo_loss(a, np.array([-8.0]), np.array([3.0]), np.array([2.0]))[0])(
        np.array([-6.0])
    )
    # d/da of −log σ(2a/3 + 8 − 0.5) = −σ(−h)·2/3
    np.testing.assert_allclose(g[0], -(1 / (1 + math.exp(3.5))) * 2 / 3, rtol=1e-5)


def test_bradley_terry():
    rc, rr = np.array([1.0, 0.0, 2.0]), np.array([0.0, 1.0, 2.0])
    loss, m = bradley_terry_loss(rc, rr, margin=0.5)
    expected = np.mean([math.log(1 + math.exp(-(g - 0.5))) for g in rc - rr])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(m["accuracy"], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(m["margin"], 0.0, atol=1e-7)
    g = jax.grad(lambda a: bradley_terry_loss(a, rr)[0])(rc)
    np.testing.assert_allclose(g, -(1 / (1 + np.exp(rc - rr))) / 3, rtol=1e-5)


def test_bad_arguments_raise():
    x = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="kind"):
        dpo_loss(x, x, x, x, 0.1, kind="kto")
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(x, x, x, x, 0.1, kind="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(x, x, x, x, 0.1, kind="robust", label_smoothing=0.5)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(x, x, x, x, 0.0)
    with pytest.raises(ValueError, match="ref_rejected_logps"):
        dpo_loss(x, x, x, np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="gamma"):
        simpo_loss(x, x, x + 1, x + 1, gamma=-1.0)
