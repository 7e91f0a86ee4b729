"""Tests for jaxrl.core.policy: slow NumPy references, rlax/distrax cross-checks, gradients."""

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from jax.test_util import check_grads

from jaxrl.core import dpg, policy, sac

TOL = dict(rtol=1e-5, atol=1e-6)
FD = dict(order=1, modes=["rev"], eps=1e-3, atol=1e-2, rtol=1e-2)


def rnd(seed, *shape, scale=1.0):
    return (scale * np.random.default_rng(seed).normal(size=shape)).astype(np.float32)


# --------------------------------------------------------------------------- slow references


def ref_mean(x, mask=None):
    x = np.asarray(x, np.float64)
    m = None if mask is None else np.broadcast_to(np.asarray(mask, np.float64), x.shape).ravel()
    x = x.ravel()
    if m is None:
        return sum(x) / len(x)
    den = sum(m)
    return 0.0 if den == 0 else sum(xi * mi for xi, mi in zip(x, m, strict=True) if mi != 0) / den


def ref_ppo(log_ratio, adv, low, high, mask=None):
    objs, clipped, kls = [], [], []
    adv = np.broadcast_to(adv, log_ratio.shape)
    for lr, a in zip(log_ratio.ravel(), adv.ravel(), strict=True):
        ratio = math.exp(lr)
        unclipped = ratio * a
        clip_term = min(max(ratio, 1 - low), 1 + high) * a
        objs.append(min(unclipped, clip_term))
        clipped.append(1.0 if clip_term < unclipped else 0.0)
        kls.append((ratio - 1) - lr)
    shape = log_ratio.shape
    return tuple(
        ref_mean(np.reshape(v, shape), mask) * s for v, s in ((objs, -1), (clipped, 1), (kls, 1))
    )


def ref_softmax(logits):
    out = np.zeros_like(logits, dtype=np.float64)
    for i in np.ndindex(logits.shape[:-1]):
        z = np.exp(logits[i] - np.max(logits[i]))
        out[i] = z / z.sum()
    return out


def ref_entropy(logits):
    p = ref_softmax(logits)
    h = np.zeros(logits.shape[:-1])
    for i in np.ndindex(h.shape):
        h[i] = -sum(pa * math.log(pa) for pa in p[i] if pa > 0)
    return h


def ref_categorical_kl(lp, lq):
    p, q = ref_softmax(lp), ref_softmax(lq)
    out = np.zeros(lp.shape[:-1])
    for i in np.ndindex(out.shape):
        out[i] = sum(pa * math.log(pa / qa) for pa, qa in zip(p[i], q[i], strict=True) if pa > 0)
    return out


def ref_gaussian_kl(mp, lsp, mq, lsq):
    out = np.zeros(mp.shape[:-1])
    for i in np.ndindex(out.shape):
        for d in range(mp.shape[-1]):
            sp, sq = math.exp(lsp[i][d]), math.exp(lsq[i][d])
            out[i] += math.log(sq / sp) + (sp**2 + (mp[i][d] - mq[i][d]) ** 2) / (2 * sq**2) - 0.5
    return out


# --------------------------------------------------------------------------- masked mean, PG


def test_masked_mean():
    x = rnd(0, 3, 4)
    mask = (np.arange(12).reshape(3, 4) % 3 != 0).astype(np.float32)
    np.testing.assert_allclose(policy.masked_mean(x), ref_mean(x), **TOL)
    np.testing.assert_allclose(policy.masked_mean(x, mask), ref_mean(x, mask), **TOL)
    np.testing.assert_allclose(policy.masked_mean(x, mask.astype(bool)), ref_mean(x, mask), **TOL)
    weights = np.array([[0.5], [0.0], [2.0]], np.float32)  # size-1 axis broadcasts
    np.testing.assert_allclose(policy.masked_mean(x, weights), ref_mean(x, weights), **TOL)
    assert policy.masked_mean(x, np.zeros_like(x)) == 0.0
    # NaN / inf in masked-out padding reach neither the value nor the gradient
    bad = jnp.asarray(x).at[0, 0].set(jnp.nan).at[0, 3].set(jnp.inf)
    assert np.isfinite(policy.masked_mean(bad, mask))
    grad = jax.grad(policy.masked_mean)(bad, mask)
    assert np.all(np.isfinite(grad)) and grad[0, 0] == 0
    with pytest.raises(ValueError, match="`mask`"):
        policy.masked_mean(x, np.ones(4))


def test_policy_gradient_loss():
    lp, adv, mask = rnd(1, 6), rnd(2, 6), np.array([1, 1, 0, 1, 0, 1], np.float32)
    loss, metrics = policy.policy_gradient_loss(lp, adv)
    np.testing.assert_allclose(loss, -ref_mean(lp * adv), **TOL)
    assert metrics["policy_loss"] == loss
    masked, _ = policy.policy_gradient_loss(lp, adv, mask)
    np.testing.assert_allclose(masked, -ref_mean(lp * adv, mask), **TOL)
    # ∇_logπ = −A/N, and no gradient reaches the advantages
    g_lp, g_adv = jax.grad(lambda a, b: policy.policy_gradient_loss(a, b)[0], (0, 1))(lp, adv)
    np.testing.assert_allclose(g_lp, -adv / 6, **TOL)
    assert np.all(g_adv == 0)
    check_grads(lambda a: policy.policy_gradient_loss(a, adv, mask)[0], (jnp.asarray(lp),), **FD)


def test_entropy_against_rlax_and_reference():
    logits = rnd(3, 4, 5, scale=2.0)
    h = policy.categorical_entropy(logits)
    assert h.shape == (4,)
    np.testing.assert_allclose(h, ref_entropy(logits), **TOL)
    np.testing.assert_allclose(h, rlax.softmax().entropy(logits), **TOL)
    np.testing.assert_allclose(policy.categorical_entropy(np.zeros((2, 7))), [math.log(7)] * 2)
    # rlax.entropy_loss(logits, w) = −mean(w·H): same sign convention as entropy_loss
    np.testing.assert_allclose(
        policy.entropy_loss(h), rlax.entropy_loss(logits, jnp.ones(4)), **TOL
    )
    mask = np.array([1, 0, 1, 1], np.float32)
    np.testing.assert_allclose(policy.entropy_loss(h, mask), -ref_mean(h, mask), **TOL)
    check_grads(policy.categorical_entropy, (jnp.asarray(logits),), **FD)


def test_masked_actions_stay_finite():
    logits = jnp.array([[1.0, -jnp.inf, 0.5], [0.0, 0.0, -jnp.inf]])
    reduced = [np.array([1.0, 0.5]), np.array([0.0, 0.0])]
    h = policy.categorical_entropy(logits)
    np.testing.assert_allclose(h, [ref_entropy(r) for r in reduced], **TOL)
    assert np.all(np.isfinite(jax.grad(lambda z: policy.categorical_entropy(z).sum())(logits)))
    kl = policy.categorical_kl(logits, jnp.zeros((2, 3)))
    np.testing.assert_allclose(kl, [math.log(3) - ref_entropy(r) for r in reduced], **TOL)
    assert np.all(
        np.isfinite(jax.grad(lambda z: policy.categorical_kl(z, jnp.zeros_like(z)).sum())(logits))
    )


# --------------------------------------------------------------------------- A2C


def test_actor_critic_loss():
    lp, adv, v, g, h = (rnd(s, 2, 3) for s in range(10, 15))
    mask = np.array([[1, 0, 1], [1, 1, 0]], np.float32)
    loss, m = policy.actor_critic_loss(lp, adv, v, g, h, 0.5, 0.01, mask=mask)
    pl = -ref_mean(lp * adv, mask)
    vl = ref_mean(0.5 * (v - g) ** 2, mask)
    ent = ref_mean(h, mask)
    np.testing.assert_allclose(loss, pl + 0.5 * vl - 0.01 * ent, **TOL)
    np.testing.assert_allclose(
        [m["policy_loss"], m["value_loss"], m["entropy"]], [pl, vl, ent], **TOL
    )
    f = lambda a, b, c: policy.actor_critic_loss(a, adv, b, g, c, 0.5, 0.01)[0]
    check_grads(f, tuple(map(jnp.asarray, (lp, v, h))), **FD)
    g_adv, g_tgt = jax.grad(
        lambda a, t: policy.actor_critic_loss(lp, a, v, t, h, 0.5, 0.01)[0], (0, 1)
    )(adv, g)
    assert np.all(g_adv == 0) and np.all(g_tgt == 0)


# --------------------------------------------------------------------------- PPO


def test_ppo_clip_hand_cases():
    eps = 0.2
    # ratio 1.5, A = 1: clipped 1.2 is the min → loss −1.2, clipped
    loss, m = policy.ppo_clip_loss(jnp.log(jnp.array([1.5])), jnp.array([1.0]), eps)
    np.testing.assert_allclose([loss, m["clip_fraction"]], [-1.2, 1.0], rtol=1e-6)
    # ratio 0.5, A = 1: unclipped 0.5 is the min → not clipped
    loss, m = policy.ppo_clip_loss(jnp.log(jnp.array([0.5])), jnp.array([1.0]), eps)
    np.testing.assert_allclose([loss, m["clip_fraction"]], [-0.5, 0.0], rtol=1e-6)
    # ratio 0.5, A = −1: clipped −0.8 is the min → clipped
    loss, m = policy.ppo_clip_loss(jnp.log(jnp.array([0.5])), jnp.array([-1.0]), eps)
    np.testing.assert_allclose([loss, m["clip_fraction"]], [0.8, 1.0], rtol=1e-6)
    # DAPO clip-higher: ratio 1.25 is inside 1 + 0.28 but outside 1 + 0.2
    lr, a = jnp.log(jnp.array([1.25])), jnp.array([1.0])
    sym, _ = policy.ppo_clip_loss(lr, a, 0.2)
    asym, _ = policy.ppo_clip_loss(lr, a, clip_eps_low=0.2, clip_eps_high=0.28)
    np.testing.assert_allclose([sym, asym], [-1.2, -1.25], rtol=1e-6)
    # approx_kl is zero when nothing changed
    _, m = policy.ppo_clip_loss(jnp.zeros(4), jnp.ones(4), 0.2)
    assert m["approx_kl"] == 0.0 and m["clip_fraction"] == 0.0


@pytest.mark.parametrize("low, high", [(0.2, 0.2), (0.1, 0.3), (0.2, 0.28)])
def test_ppo_clip_matches_reference(low, high):
    lr, adv = rnd(20, 4, 5, scale=0.4), rnd(21, 4, 5)
    mask = (rnd(22, 4, 5) > -0.5).astype(np.float32)
    for msk in (None, mask):
        loss, m = policy.ppo_clip_loss(lr, adv, clip_eps_low=low, clip_eps_high=high, mask=msk)
        exp_loss, exp_cf, exp_kl = ref_ppo(lr, adv, low, high, msk)
        np.testing.assert_allclose(loss, exp_loss, **TOL)
        np.testing.assert_allclose(m["clip_fraction"], exp_cf, **TOL)
        np.testing.assert_allclose(m["approx_kl"], exp_kl, **TOL)
    if low == high:
        sym, _ = policy.ppo_clip_loss(lr, adv, low)
        asym, _ = policy.ppo_clip_loss(lr, adv, clip_eps_low=low, clip_eps_high=high)
        np.testing.assert_allclose(sym, asym, **TOL)
        # rlax takes ratios on one axis and returns −mean(min(…)): the same sign as ours
        r = rlax.clipped_surrogate_pg_loss(np.exp(lr).ravel(), adv.ravel(), low)
        np.testing.assert_allclose(sym, r, **TOL)


def test_ppo_clip_gradients_and_broadcast_advantages():
    # log ratios away from the clip kinks at log(0.8), log(1.2)
    lr = jnp.array([[-0.5, -0.1, 0.05], [0.1, 0.4, -0.05]])
    adv = jnp.array([[1.0], [-2.0]])  # per-sequence advantages for [N, L] tokens
    mask = jnp.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    f = lambda x: policy.ppo_clip_loss(x, adv, 0.2, mask=mask)[0]
    check_grads(f, (lr,), **FD)
    grad = jax.grad(f)(lr)
    ratio = np.exp(lr)
    a = np.broadcast_to(adv, lr.shape)
    active = np.minimum(ratio * a, np.clip(ratio, 0.8, 1.2) * a) == ratio * a
    # d/dlogρ of −ρA/Σmask where unclipped (and unmasked), 0 where the clip is active
    np.testing.assert_allclose(grad, np.where(active, -ratio * a * mask / 5, 0.0), **TOL)
    assert np.all(jax.grad(lambda b: policy.ppo_clip_loss(lr, b, 0.2)[0])(adv) == 0)
    full, _ = policy.ppo_clip_loss(lr, jnp.broadcast_to(adv, lr.shape), 0.2, mask=mask)
    np.testing.assert_allclose(f(lr), full, **TOL)


def test_ppo_clip_argument_errors():
    lr, adv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="either `clip_eps`"):
        policy.ppo_clip_loss(lr, adv)
    with pytest.raises(ValueError, match="not both"):
        policy.ppo_clip_loss(lr, adv, 0.2, clip_eps_low=0.2, clip_eps_high=0.3)
    with pytest.raises(ValueError, match="either `clip_eps`"):
        policy.ppo_clip_loss(lr, adv, clip_eps_high=0.3)
    with pytest.raises(ValueError, match="`clip_eps`"):
        policy.ppo_clip_loss(lr, adv, -0.1)
    with pytest.raises(ValueError, match="`clip_eps_low`"):
        policy.ppo_clip_loss(lr, adv, clip_eps_low=1.5, clip_eps_high=0.3)
    with pytest.raises(ValueError, match="`advantages`"):
        policy.ppo_clip_loss(np.zeros((2, 3)), np.ones(2), 0.2)  # [N] against [N, L]
    with pytest.raises(ValueError, match="`mask`"):
        policy.ppo_clip_loss(lr, adv, 0.2, mask=np.ones(4))


def test_ppo_clip_eps_can_be_traced():
    lr, adv = rnd(23, 6, scale=0.5), rnd(24, 6)
    eps = jnp.array([0.1, 0.2, 0.3])
    losses = jax.vmap(lambda e: policy.ppo_clip_loss(lr, adv, e)[0])(eps)
    for e, got in zip([0.1, 0.2, 0.3], losses, strict=True):
        np.testing.assert_allclose(got, ref_ppo(lr, adv, e, e)[0], **TOL)


def test_ppo_kl_penalty_loss():
    lr, adv, kl = rnd(30, 5, scale=0.3), rnd(31, 5), np.abs(rnd(32, 5))
    loss, m = policy.ppo_kl_penalty_loss(lr, adv, kl, 0.5)
    surrogate = -ref_mean(np.exp(lr.astype(np.float64)) * adv)
    np.testing.assert_allclose(loss, surrogate + 0.5 * ref_mean(kl), **TOL)
    np.testing.assert_allclose([m["policy_loss"], m["kl"]], [surrogate, ref_mean(kl)], **TOL)
    np.testing.assert_allclose(m["approx_kl"], ref_mean(np.exp(lr) - 1 - lr), **TOL)
    f = lambda x, k: policy.ppo_kl_penalty_loss(x, adv, k, 0.5)[0]
    check_grads(f, (jnp.asarray(lr), jnp.asarray(kl)), **FD)


# --------------------------------------------------------------------------- divergences, TRPO


def test_categorical_kl():
    lp, lq = rnd(40, 3, 4, scale=2.0), rnd(41, 3, 4, scale=2.0)
    kl = policy.categorical_kl(lp, lq)
    np.testing.assert_allclose(kl, ref_categorical_kl(lp, lq), **TOL)
    np.testing.assert_allclose(kl, jax.vmap(rlax.categorical_kl_divergence)(lp, lq), **TOL)
    np.testing.assert_allclose(policy.categorical_kl(lp, lp), 0.0, atol=1e-6)
    check_grads(policy.categorical_kl, (jnp.asarray(lp), jnp.asarray(lq)), **FD)
    with pytest.raises(ValueError, match="`logits_q`"):
        policy.categorical_kl(lp, lq[:, :3])


def test_gaussian_kl():
    mp, mq = rnd(50, 3, 2), rnd(51, 3, 2)
    lsp, lsq = rnd(52, 3, 2, scale=0.5), rnd(53, 3, 2, scale=0.5)
    kl = policy.gaussian_kl(mp, lsp, mq, lsq)
    assert kl.shape == (3,)
    np.testing.assert_allclose(kl, ref_gaussian_kl(mp, lsp, mq, lsq), rtol=1e-5, atol=1e-5)
    p = distrax.MultivariateNormalDiag(mp, np.exp(lsp))
    q = distrax.MultivariateNormalDiag(mq, np.exp(lsq))
    np.testing.assert_allclose(kl, p.kl_divergence(q), rtol=1e-5, atol=1e-5)
    # a state-independent log-std of shape [1, D] broadcasts
    shared = lsp[:1]
    np.testing.assert_allclose(
        policy.gaussian_kl(mp, shared, mq, lsq),
        ref_gaussian_kl(mp, np.broadcast_to(shared, mp.shape), mq, lsq),
        rtol=1e-5,
        atol=1e-5,
    )
    check_grads(policy.gaussian_kl, tuple(map(jnp.asarray, (mp, lsp, mq, lsq))), **FD)
    with pytest.raises(ValueError, match="`log_std_q`"):
        policy.gaussian_kl(mp, lsp, mq, lsq[:, :1].T)


def test_trpo_surrogate():
    lp, old, adv = rnd(60, 6, scale=0.3), rnd(61, 6, scale=0.3), rnd(62, 6)
    np.testing.assert_allclose(
        policy.trpo_surrogate(lp, old, adv), ref_mean(np.exp(lp - old) * adv), **TOL
    )
    # at π = π_old the surrogate is mean(A) and its gradient is the policy gradient A/N
    np.testing.assert_allclose(policy.trpo_surrogate(old, old, adv), ref_mean(adv), **TOL)
    g, g_old = jax.grad(policy.trpo_surrogate, (0, 1))(old, old, adv)
    np.testing.assert_allclose(g, adv / 6, **TOL)
    assert np.all(g_old == 0)
    check_grads(lambda x: policy.trpo_surrogate(x, old, adv), (jnp.asarray(lp),), **FD)


# --------------------------------------------------------------------------- SAC, DPG, TD3


def test_sac_continuous():
    lp, q, alpha = rnd(70, 8), rnd(71, 8), 0.2
    np.testing.assert_allclose(sac.sac_actor_loss(lp, q, alpha), ref_mean(alpha * lp - q), **TOL)
    g_lp, g_q, g_a = jax.grad(sac.sac_actor_loss, (0, 1, 2))(lp, q, alpha)
    np.testing.assert_allclose(g_lp, np.full(8, alpha / 8), **TOL)
    np.testing.assert_allclose(g_q, np.full(8, -1 / 8), **TOL)  # reaches the actor via a(θ)
    assert g_a == 0

    r, d, q1, q2, nlp = (
        rnd(72, 8),
        np.float32(0.99) * (rnd(73, 8) > 0),
        rnd(74, 8),
        rnd(75, 8),
        rnd(76, 8),
    )
    y = sac.sac_soft_target(r, d, q1, q2, nlp, alpha)
    expected = [r[i] + d[i] * (min(q1[i], q2[i]) - alpha * nlp[i]) for i in range(8)]
    np.testing.assert_allclose(y, expected, **TOL)
    assert np.all(jax.grad(lambda x: sac.sac_soft_target(r, d, x, q2, nlp, alpha).sum())(q1) == 0)
    open_g = jax.grad(lambda x: sac.sac_soft_target(r, d, x, q2, nlp, alpha, False).sum())(q1)
    np.testing.assert_allclose(open_g, d * (q1 <= q2), **TOL)

    log_alpha, h_target = jnp.float32(-1.0), -2.0
    np.testing.assert_allclose(
        sac.sac_alpha_loss(log_alpha, lp, h_target), -ref_mean(-1.0 * (lp + h_target)), **TOL
    )
    # the gradient raises α when the entropy −logπ is below the target
    g_alpha = jax.grad(sac.sac_alpha_loss)(log_alpha, lp, h_target)
    np.testing.assert_allclose(g_alpha, -ref_mean(lp + h_target), **TOL)
    assert np.all(jax.grad(sac.sac_alpha_loss, 1)(log_alpha, lp, h_target) == 0)


def ref_discrete(probs, log_probs, q1, q2, alpha, h_target):
    actor, value, gap = [], [], []
    for b in range(probs.shape[0]):
        pa, la = probs[b], log_probs[b]
        actor.append(sum(pa[a] * (alpha * la[a] - min(q1[b, a], q2[b, a])) for a in range(len(pa))))
        value.append(sum(pa[a] * (min(q1[b, a], q2[b, a]) - alpha * la[a]) for a in range(len(pa))))
        gap.append(sum(pa[a] * (la[a] + h_target) for a in range(len(pa))))
    return np.mean(actor), np.array(value), np.array(gap)


def test_sac_discrete():
    logits, q1, q2 = rnd(80, 4, 3, scale=2.0), rnd(81, 4, 3), rnd(82, 4, 3)
    log_probs = np.asarray(jax.nn.log_softmax(logits))
    probs = np.exp(log_probs)
    alpha, h_target, log_alpha = 0.3, 0.5, jnp.float32(0.4)
    actor, val, gap = ref_discrete(probs, log_probs, q1, q2, alpha, h_target)
    q_min = np.minimum(q1, q2)
    np.testing.assert_allclose(
        sac.sac_discrete_actor_loss(probs, log_probs, q_min, alpha), actor, **TOL
    )
    np.testing.assert_allclose(
        sac.sac_discrete_soft_value(probs, log_probs, q1, q2, alpha), val, **TOL
    )
    np.testing.assert_allclose(
        sac.sac_discrete_alpha_loss(log_alpha, probs, log_probs, h_target),
        -0.4 * np.mean(gap),
        **TOL,
    )
    # the bracket is −H(π) + H̄ because π sums to one
    np.testing.assert_allclose(gap, -ref_entropy(logits) + h_target, rtol=1e-5, atol=1e-5)

    def actor_from_logits(z):
        lp = jax.nn.log_softmax(z)
        return sac.sac_discrete_actor_loss(jnp.exp(lp), lp, q_min, alpha)

    check_grads(actor_from_logits, (jnp.asarray(logits),), **FD)
    assert np.all(jax.grad(sac.sac_discrete_actor_loss, 2)(probs, log_probs, q_min, alpha) == 0)
    soft_v = lambda x: sac.sac_discrete_soft_value(probs, log_probs, x, q2, alpha).sum()
    assert np.all(jax.grad(soft_v)(q1) == 0)
    # masked actions: π = 0 and log π = −∞ contribute nothing and keep gradients finite
    masked = jnp.asarray(logits).at[:, 0].set(-jnp.inf)
    lp_m = jax.nn.log_softmax(masked)
    v_m = sac.sac_discrete_soft_value(jnp.exp(lp_m), lp_m, q1, q2, alpha)
    _, v_ref, _ = ref_discrete(
        np.exp(lp_m)[:, 1:], np.asarray(lp_m)[:, 1:], q1[:, 1:], q2[:, 1:], alpha, 0
    )
    np.testing.assert_allclose(v_m, v_ref, **TOL)
    g = jax.grad(lambda z: actor_from_logits(z))(masked)
    assert np.all(np.isfinite(g))
    with pytest.raises(ValueError, match="`q_values`"):
        sac.sac_discrete_actor_loss(probs, log_probs, q_min[:, :2], alpha)


def test_dpg_and_td3_target_actions():
    q = rnd(90, 7)
    np.testing.assert_allclose(dpg.dpg_actor_loss(q), -ref_mean(q), **TOL)
    np.testing.assert_allclose(jax.grad(dpg.dpg_actor_loss)(q), np.full(7, -1 / 7), **TOL)

    key = jax.random.key(0)
    mu = jax.random.uniform(jax.random.key(1), (2000, 2), minval=-0.5, maxval=0.5)
    out = dpg.td3_target_actions(key, mu, 0.2, 0.5, -0.8, 0.8)
    noise = jnp.clip(0.2 * jax.random.normal(key, mu.shape), -0.5, 0.5)
    np.testing.assert_allclose(out, np.clip(mu + noise, -0.8, 0.8), **TOL)
    # both clips bite somewhere, and neither moves an action more than c from μ'(s')
    assert np.any(np.abs(out) == 0.8) and np.any(np.abs(noise) == 0.5)
    assert np.all(np.abs(out - mu) <= 0.5 + 1e-6) and np.all(np.abs(out) <= 0.8)
    np.testing.assert_allclose(jnp.std(noise), 0.2, rtol=0.08)  # the clip at 2.5σ barely bites
    np.testing.assert_allclose(
        jax.jit(dpg.td3_target_actions)(key, mu, 0.2, 0.5, -0.8, 0.8), out, **TOL
    )
    np.testing.assert_allclose(
        dpg.td3_target_actions(key, mu, 0.0, 0.5, -0.3, 0.3), np.clip(mu, -0.3, 0.3)
    )
    # per-dimension bounds
    low, high = jnp.array([-0.1, -2.0]), jnp.array([0.1, 2.0])
    bounded = dpg.td3_target_actions(key, mu, 0.2, 0.5, low, high)
    assert np.all(bounded >= low) and np.all(bounded <= high)
    with pytest.raises(ValueError, match="`noise_std`"):
        dpg.td3_target_actions(key, mu, -0.1, 0.5, -1.0, 1.0)


# --------------------------------------------------------------------------- jit / vmap


def _cases():
    """(name, function, batched args [2, 4, ...], in_axes): scalars are not mapped."""
    lp, adv, v, g, h = (rnd(100 + i, 2, 4) for i in range(5))
    lr = rnd(105, 2, 4, scale=0.3)
    mask = (rnd(106, 2, 4) > -0.7).astype(np.float32)
    logits, logits2 = rnd(107, 2, 4, 3), rnd(108, 2, 4, 3)
    probs = np.asarray(jax.nn.softmax(logits))
    log_probs = np.asarray(jax.nn.log_softmax(logits))

    first = lambda f: lambda *a: f(*a)[0]
    return [
        ("pg", first(policy.policy_gradient_loss), (lp, adv, mask), (0, 0, 0)),
        ("entropy", policy.categorical_entropy, (logits,), (0,)),
        ("entropy_loss", policy.entropy_loss, (h, mask), (0, 0)),
        (
            "a2c",
            first(policy.actor_critic_loss),
            (lp, adv, v, g, h, 0.5, 0.01),
            (0,) * 5 + (None,) * 2,
        ),
        ("ppo", first(policy.ppo_clip_loss), (lr, adv, 0.2), (0, 0, None)),
        ("ppo_kl", first(policy.ppo_kl_penalty_loss), (lr, adv, np.abs(h), 0.3), (0, 0, 0, None)),
        ("cat_kl", policy.categorical_kl, (logits, logits2), (0, 0)),
        ("gauss_kl", policy.gaussian_kl, (logits, logits2 * 0.3, logits2, logits * 0.3), (0,) * 4),
        ("trpo", policy.trpo_surrogate, (lp, lr, adv), (0, 0, 0)),
        ("sac_actor", sac.sac_actor_loss, (lp, v, 0.2), (0, 0, None)),
        ("sac_target", sac.sac_soft_target, (v, 0.99, g, h, lp, 0.2), (0, None, 0, 0, 0, None)),
        ("sac_alpha", sac.sac_alpha_loss, (0.1, lp, -1.0), (None, 0, None)),
        (
            "sacd_actor",
            sac.sac_discrete_actor_loss,
            (probs, log_probs, logits2, 0.2),
            (0, 0, 0, None),
        ),
        (
            "sacd_value",
            sac.sac_discrete_soft_value,
            (probs, log_probs, logits, logits2, 0.2),
            (0, 0, 0, 0, None),
        ),
        (
            "sacd_alpha",
            sac.sac_discrete_alpha_loss,
            (0.1, probs, log_probs, 0.5),
            (None, 0, 0, None),
        ),
        ("dpg", dpg.dpg_actor_loss, (v,), (0,)),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_jit_and_vmap_agree(case):
    _, fn, args, in_axes = case
    eager = [
        fn(*(a if ax is None else a[i] for a, ax in zip(args, in_axes, strict=True)))
        for i in range(2)
    ]
    jitted = jax.jit(fn)(*(a if ax is None else a[0] for a, ax in zip(args, in_axes, strict=True)))
    vmapped = jax.vmap(fn, in_axes=in_axes)(*args)
    np.testing.assert_allclose(jitted, eager[0], **TOL)
    np.testing.assert_allclose(vmapped, np.stack(eager), **TOL)
    assert vmapped.dtype == jnp.float32


def test_public_names_have_docstrings():
    for name in policy.__all__:
        assert getattr(policy, name).__doc__, name
