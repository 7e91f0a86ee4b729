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


# ---------------------------------------------------------------------------
# masked sums, variance, whitening


def test_masked_sum_var_whiten_against_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    m = (rng.uniform(size=(3, 6)) < 0.6).astype(np.float32)
    m[0, 0] = 1.0
    m[1, 1] = 1.0
    sel = x[m > 0]
    np.testing.assert_allclose(sequence.masked_sum(x, m), sel.sum(), rtol=1e-5)
    np.testing.assert_allclose(sequence.masked_sum(x, m, axis=-1), (x * m).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(sequence.masked_var(x, m), sel.var(ddof=1), rtol=1e-4)
    np.testing.assert_allclose(sequence.masked_var(x, m, unbiased=False), sel.var(), rtol=1e-4)
    w = np.asarray(sequence.masked_whiten(x, m))
    expected = (x - sel.mean()) / np.sqrt(sel.var(ddof=1) + 1e-8)
    np.testing.assert_allclose(w[m > 0], expected[m > 0], rtol=1e-4, atol=1e-5)
    assert np.all(w[m == 0] == 0)
    kept = np.asarray(sequence.masked_whiten(x, m, shift_mean=False))
    np.testing.assert_allclose(kept[m > 0], expected[m > 0] + sel.mean(), rtol=1e-4, atol=1e-5)
    # padding values never reach the result, NaN included
    x_nan = np.where(m > 0, x, np.nan)
    np.testing.assert_allclose(sequence.masked_whiten(x_nan, m), w, rtol=1e-6)
    assert float(sequence.masked_var(x, np.zeros_like(m))) == 0.0


# ---------------------------------------------------------------------------
# group advantages


def ref_group_advantages(r, kind, eps=1e-6):
    r = np.asarray(r, np.float64)
    out = np.zeros_like(r)
    for n in range(r.shape[0]):
        g = r.shape[1]
        for i in range(g):
            others = [r[n, j] for j in range(g) if j != i]
            mean = r[n].mean()
            if kind == "grpo":
                std = math.sqrt(sum((v - mean) ** 2 for v in r[n]) / (g - 1))
                out[n, i] = (r[n, i] - mean) / (std + eps)
            elif kind == "dr_grpo":
                out[n, i] = r[n, i] - mean
            else:
                out[n, i] = r[n, i] - sum(others) / len(others)
    return out


def test_group_advantages_target_value():
    got = sequence.group_advantages(jnp.array([[1.0, 0.0, 0.0, 1.0]]), "grpo")
    np.testing.assert_allclose(got, [[0.8660254, -0.8660254, -0.8660254, 0.8660254]], atol=1e-5)


def test_group_advantages_hand_cases():
    r = jnp.array([[1.0, 0.0, 0.0, 1.0], [3.0, 1.0, 2.0, 2.0]])
    # RLOO: 1 − mean(0, 0, 1) = 2/3; Dr. GRPO: r − 0.5
    np.testing.assert_allclose(
        sequence.group_advantages(r, "rloo")[0], [2 / 3, -2 / 3, -2 / 3, 2 / 3], rtol=1e-6
    )
    np.testing.assert_allclose(
        sequence.group_advantages(r, "dr_grpo")[1], [1.0, -1.0, 0.0, 0.0], rtol=1e-6
    )
    # second row: mean 2, Bessel std sqrt(2/3)
    np.testing.assert_allclose(
        sequence.group_advantages(r, "grpo", eps=0.0)[1],
        np.array([1.0, -1.0, 0.0, 0.0]) / math.sqrt(2 / 3),
        rtol=1e-6,
    )


@pytest.mark.parametrize("kind", ["grpo", "dr_grpo", "rloo"])
def test_group_advantages_against_loop_jit_vmap(kind):
    rng = np.random.default_rng(2)
    r = rng.normal(size=(4, 5)).astype(np.float32)
    r[3] = 0.7  # equal rewards: no signal
    got = sequence.group_advantages(r, kind)
    np.testing.assert_allclose(got, ref_group_advantages(r, kind), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[3], 0.0, atol=1e-6)
    jitted = jax.jit(sequence.group_advantages, static_argnums=1)(r, kind)
    np.testing.assert_allclose(jitted, got, rtol=1e-6, atol=1e-7)  # float32 rounding
    vm = jax.vmap(sequence.group_advantages, in_axes=(0, None))(r[:, None], kind)[:, 0]
    np.testing.assert_allclose(vm, got, rtol=1e-6)
    np.testing.assert_allclose(np.sum(got, axis=1), 0.0, atol=1e-5)


def test_group_advantages_errors():
    with pytest.raises(ValueError, match="`kind`"):
        sequence.group_advantages(jnp.zeros((2, 3)), "ppo")
    with pytest.raises(ValueError, match="at least 2"):
        sequence.group_advantages(jnp.zeros((2, 1)), "rloo")
    np.testing.assert_allclose(sequence.group_advantages(jnp.ones((2, 1)), "dr_grpo"), 0.0)


# ---------------------------------------------------------------------------
# token-level GAE


def ref_token_gae(r, v, m, gamma, lam):
    r, v, m = (np.asarray(a, np.float64) for a in (r, v, m))
    adv = np.zeros_like(r)
    for n in range(r.shape[0]):
        idx = [t for t in range(r.shape[1]) if m[n, t] > 0]
        next_v, next_a = 0.0, 0.0
        for t in reversed(idx):
            delta = r[n, t] + gamma * next_v - v[n, t]
            next_a = delta + gamma * lam * next_a
            next_v = v[n, t]
            adv[n, t] = next_a
    return adv, np.where(m > 0, adv + v, 0.0)


def test_token_gae_target_value():
    adv, ret = sequence.token_gae(
        jnp.array([[0.0, 0.0, 1.0]]), jnp.array([[0.5, 0.6, 0.7]]), jnp.ones((1, 3)), 1.0, 0.95
    )
    np.testing.assert_allclose(adv, [[0.46575, 0.385, 0.3]], rtol=1e-5)
    np.testing.assert_allclose(ret, [[0.96575, 0.985, 1.0]], rtol=1e-5)


def test_token_gae_masked_positions_change_nothing():
    rng = np.random.default_rng(3)
    r = rng.normal(size=(3, 7)).astype(np.float32)
    v = rng.normal(size=(3, 7)).astype(np.float32)
    m = np.ones((3, 7), np.float32)
    m[0, :2] = 0  # prompt
    m[0, 5:] = 0  # padding
    m[1, 3] = 0  # a hole
    m[2, :] = 0  # empty completion
    adv, ret = sequence.token_gae(r, v, m, 0.9, 0.8)
    ref_a, ref_r = ref_token_gae(r, v, m, 0.9, 0.8)
    np.testing.assert_allclose(adv, ref_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ret, ref_r, rtol=1e-5, atol=1e-6)
    r2 = np.where(m > 0, r, 100.0).astype(np.float32)
    v2 = np.where(m > 0, v, np.nan).astype(np.float32)
    adv2, ret2 = sequence.token_gae(r2, v2, m, 0.9, 0.8)
    np.testing.assert_array_equal(adv2, adv)
    np.testing.assert_array_equal(ret2, ret)
    assert np.all(np.asarray(adv)[m == 0] == 0) and np.all(np.asarray(ret)[m == 0] == 0)


def test_token_gae_equals_core_gae_on_a_contiguous_completion():
    from jaxrl import core

    rng = np.random.default_rng(4)
    r = rng.normal(size=(6,)).astype(np.float32)
    v = rng.normal(size=(6,)).astype(np.float32)
    m = np.array([1, 1, 1, 1, 0, 0], np.float32)
    adv, ret = sequence.token_gae(r[None], v[None], m[None], 0.97, 0.9)
    # core.gae is time-major; the completion ends at its last token, a true terminal
    n = 4
    term = np.zeros(n, np.float32)
    term[-1] = 1.0
    next_v = np.append(v[1:n], 0.0).astype(np.float32)
    a_ref, t_ref = core.gae(r[:n], v[:n], next_v, term, term, 0.97, 0.9)
    np.testing.assert_allclose(adv[0, :n], a_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ret[0, :n], t_ref, rtol=1e-5, atol=1e-6)


def test_token_gae_jit_and_traced_gamma():
    rng = np.random.default_rng(5)
    r, v = rng.normal(size=(2, 2, 5)).astype(np.float32)
    m = np.ones((2, 5), np.float32)
    f = jax.jit(sequence.token_gae)
    for gamma, lam in [(1.0, 0.95), (0.9, 0.5)]:
        got = f(r, v, m, jnp.float32(gamma), jnp.float32(lam))
        ref = ref_token_gae(r, v, m, gamma, lam)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="`values`"):
        sequence.token_gae(r, v[:, :4], m)


# ---------------------------------------------------------------------------
# per-token rewards with a KL penalty


def test_kl_penalized_rewards_hand_case_and_policy_equals_reference():
    lp = jnp.array([[-1.0, -2.0, -0.5, -3.0]])
    ref = jnp.array([[-1.5, -2.0, -1.0, -0.1]])
    m = jnp.array([[1.0, 1.0, 1.0, 0.0]])
    got = sequence.kl_penalized_rewards(jnp.array([2.0]), lp, ref, m, 0.1, "k1")
    np.testing.assert_allclose(got, [[-0.05, 0.0, -0.05 + 2.0, 0.0]], rtol=1e-6)
    for kind in ("k1", "k2", "k3"):
        np.testing.assert_allclose(sequence.kl_estimate(lp, lp, kind), 0.0)
        same = sequence.kl_penalized_rewards(jnp.array([2.0]), lp, lp, m, 0.3, kind)
        np.testing.assert_allclose(same, [[0.0, 0.0, 2.0, 0.0]])
        # summed over tokens, the rewards are the score minus β · the sequence's KL estimate
        full = sequence.kl_penalized_rewards(jnp.array([2.0]), lp, ref, m, 0.3, kind)
        kl_seq = jnp.sum(sequence.kl_estimate(lp, ref, kind) * m)
        np.testing.assert_allclose(jnp.sum(full), 2.0 - 0.3 * kl_seq, rtol=1e-6)


def test_last_token_mask_and_errors():
    m = jnp.array([[1, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0]])
    expected = [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]]
    np.testing.assert_array_equal(sequence.last_token_mask(m), expected)
    lp = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="`scores`"):
        sequence.kl_penalized_rewards(jnp.zeros(3), lp, lp, jnp.ones((2, 3)), 0.1)
    with pytest.raises(ValueError, match="`kl_coef`"):
        sequence.kl_penalized_rewards(jnp.zeros(2), lp, lp, jnp.ones((2, 3)), -0.1)


# ---------------------------------------------------------------------------
# loss aggregation


def test_aggregation_modes_hand_cases():
    x = jnp.array([[1.0, 2.0, 3.0, 9.0], [4.0, 9.0, 9.0, 9.0]])
    m = jnp.array([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    # token mean: (1 + 2 + 3 + 4) / 4
    np.testing.assert_allclose(sequence.aggregate_loss(x, m, "token_mean"), 2.5)
    # mean over sequences of token means: (2 + 4) / 2
    np.testing.assert_allclose(sequence.aggregate_loss(x, m, "seq_mean_token_mean"), 3.0)
    # mean over sequences of token sums over the constant length: (6/4 + 4/4) / 2
    np.testing.assert_allclose(sequence.aggregate_loss(x, m, "seq_mean_token_sum_norm"), 1.25)
    np.testing.assert_allclose(
        sequence.aggregate_loss(x, m, "seq_mean_token_sum_norm", max_len=10), 0.5
    )
    # empty sequences do not count as sequences in the sequence mean
    m0 = m.at[1].set(0.0)
    np.testing.assert_allclose(sequence.aggregate_loss(x, m0, "seq_mean_token_mean"), 2.0)
    np.testing.assert_allclose(sequence.aggregate_loss(x, jnp.zeros_like(m), "token_mean"), 0.0)
    with pytest.raises(ValueError, match="`mode`"):
        sequence.aggregate_loss(x, m, "sum")
    with pytest.raises(ValueError, match="`max_len`"):
        sequence.aggregate_loss(x, m, "seq_mean_token_sum_norm", max_len=0)


def _pad(a, length):
    return np.pad(a, ((0, 0), (0, length - a.shape[1])))


@pytest.mark.parametrize("mode", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"])
def test_packing_two_sequences_equals_computing_them_one_by_one(mode):
    """A batch of two padded sequences gives the loss of the two computed separately."""
    rng = np.random.default_rng(6)
    a = rng.normal(size=(1, 3)).astype(np.float32)
    b = rng.normal(size=(1, 6)).astype(np.float32)
    adv_a, adv_b = np.float32(0.7), np.float32(-1.3)
    length = 8

    def loss(log_ratio, adv, mask):
        per_token = -jnp.exp(log_ratio) * adv  # unclipped surrogate, per token
        return sequence.aggregate_loss(per_token, mask, mode, max_len=length)

    packed_x = np.concatenate([_pad(a, length), _pad(b, length)])
    packed_x[0, 3:] = 5.0  # junk in padding
    packed_m = np.concatenate([_pad(np.ones_like(a), length), _pad(np.ones_like(b), length)])
    packed_adv = np.array([[adv_a], [adv_b]], np.float32)
    both = loss(packed_x, packed_adv, packed_m)
    one_a = loss(a, adv_a, np.ones_like(a))
    one_b = loss(b, adv_b, np.ones_like(b))
    if mode == "token_mean":
        expected = (3 * one_a + 6 * one_b) / 9  # every token weighs the same
    else:
        expected = (one_a + one_b) / 2  # every sequence weighs the same
    np.testing.assert_allclose(both, expected, rtol=1e-6)
    # and extra padding changes nothing
    wider = loss(_pad(packed_x, length + 4), packed_adv, _pad(packed_m, length + 4))
    np.testing.assert_allclose(wider, both, rtol=1e-6)


def test_aggregation_weights_reuse_ppo_clip_loss():
    """Σ w·ppo-term computed through core.ppo_clip_loss (weights as its mask, times Σ w)."""
    from jaxrl import core

    rng = np.random.default_rng(7)
    lr = 0.3 * rng.normal(size=(3, 5)).astype(np.float32)
    adv = rng.normal(size=(3, 1)).astype(np.float32)
    m = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], np.float32)
    for mode in sequence.AGGREGATIONS:
        w = sequence.aggregation_weights(m, mode)
        via_ppo = core.ppo_clip_loss(lr, adv, clip_eps_low=0.2, clip_eps_high=0.28, mask=w)[0]
        ratio = np.exp(lr)
        per = -np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.28) * adv)
        np.testing.assert_allclose(via_ppo * jnp.sum(w), sequence.aggregate_loss(per, m, mode))


def test_clip_fractions():
    lr = jnp.log(jnp.array([[0.7, 0.7, 1.5, 1.5, 1.0, 0.5]]))
    adv = jnp.array([[-1.0, 1.0, 1.0, -1.0, 1.0, -1.0]])
    m = jnp.array([[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]])
    got = sequence.clip_fractions(lr, adv, 0.2, 0.28, m)
    np.testing.assert_allclose(got["clip_fraction_low"], 0.2)  # token 0 only (5 real tokens)
    np.testing.assert_allclose(got["clip_fraction_high"], 0.2)  # token 2 only


# ---------------------------------------------------------------------------
# adaptive KL controller


def test_kl_controller_matches_ziegler_rule():
    state = sequence.kl_controller_init(0.2)
    beta = 0.2
    for kl in [1.0, 12.0, 6.0, 0.0, 5.9]:
        state = sequence.kl_controller_update(state, kl, 64, 6.0, 10000)
        beta *= 1 + min(max(kl / 6.0 - 1, -0.2), 0.2) * 64 / 10000
        np.testing.assert_allclose(state.kl_coef, beta, rtol=1e-6)
    jitted = jax.jit(sequence.kl_controller_update)(state, jnp.float32(12.0), 64, 6.0, 10000.0)
    np.testing.assert_allclose(jitted.kl_coef, beta * (1 + 0.2 * 64 / 10000), rtol=1e-6)
    with pytest.raises(ValueError, match="`target_kl`"):
        sequence.kl_controller_update(state, 1.0, 1, 0.0, 10)
    with pytest.raises(ValueError, match="`kl_coef`"):
        sequence.kl_controller_init(-1.0)


def test_public_names_have_docstrings():
    for name in sequence.__all__:
        obj = getattr(sequence, name)
        assert isinstance(obj, tuple) or obj.__doc__, name


def test_sequence_log_ratio_hand_case_and_gradient():
    """log s = mean of the real tokens' log ratios; padding (even NaN) does not enter."""
    log_ratio = jnp.array([[0.1, 0.3, jnp.nan], [-0.2, 0.0, 0.0], [0.5, 0.5, 0.5]])
    mask = jnp.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    out = sequence.sequence_log_ratio(log_ratio, mask)
    np.testing.assert_allclose(out, [0.2, -0.2, 0.0], rtol=1e-6)
    grad = jax.grad(lambda x: jnp.sum(sequence.sequence_log_ratio(x, mask)))(log_ratio)
    np.testing.assert_allclose(grad, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="mask"):
        sequence.sequence_log_ratio(log_ratio, mask[:, :2])


def test_informative_groups():
    rewards = jnp.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [2.0, 2.0, 2.0 + 1e-6]])
    np.testing.assert_array_equal(sequence.informative_groups(rewards), [0.0, 1.0, 1.0])
    # exactly the groups whose advantages are not all zero
    adv = sequence.group_advantages(rewards, "rloo")
    np.testing.assert_array_equal(jnp.any(adv != 0, axis=-1), [False, True, True])
