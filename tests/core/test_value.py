"""Tests for jaxrl.core.value: slow NumPy references, rlax cross-checks, gradients, shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from jaxrl.core import returns, value

RTOL, ATOL = 1e-5, 1e-5

# --------------------------------------------------------------------------- slow references


def ref_q_family(q_tm1, a_tm1, r_t, d_t, q_t, kind, extra=None):
    """One loop over the batch; `kind` picks the bootstrap of each TD method."""
    out = np.zeros(q_tm1.shape[0])
    for b in range(q_tm1.shape[0]):
        if kind == "q":
            boot = max(q_t[b])
        elif kind == "double":
            best = int(np.argmax(extra[b]))
            boot = q_t[b][best]
        elif kind == "sarsa":
            boot = q_t[b][extra[b]]
        else:  # expected sarsa
            boot = sum(extra[b][a] * q_t[b][a] for a in range(q_t.shape[1]))
        out[b] = r_t[b] + d_t[b] * boot - q_tm1[b][a_tm1[b]]
    return out


def ref_n_step(rewards, boot, terminated, done, gamma):
    """The n-step target for one window [n] (no batch), written as a plain loop."""
    g, disc = 0.0, 1.0
    n = len(rewards)
    for k in range(n):
        g += disc * rewards[k]
        disc *= gamma
        if done[k] or terminated[k] or k == n - 1:
            if not terminated[k]:
                g += disc * boot[k]
            break
    return g


def ref_huber(x, delta):
    out = np.zeros_like(x)
    for i, v in np.ndenumerate(x):
        out[i] = 0.5 * v * v if abs(v) <= delta else delta * (abs(v) - 0.5 * delta)
    return out


def ref_clipped_value(v, old, g, eps):
    out = np.zeros_like(v)
    for i in np.ndindex(v.shape):
        clipped = old[i] + min(max(v[i] - old[i], -eps), eps)
        out[i] = 0.5 * max((v[i] - g[i]) ** 2, (clipped - g[i]) ** 2)
    return out


def random_q_inputs(seed, batch=5, actions=3):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.normal(size=s).astype(np.float32)
    probs = rng.dirichlet(np.ones(actions), size=batch).astype(np.float32)
    return dict(
        q_tm1=f(batch, actions),
        a_tm1=rng.integers(0, actions, batch).astype(np.int32),
        r_t=f(batch),
        discount_t=(0.9 * rng.integers(0, 2, batch)).astype(np.float32),
        q_t=f(batch, actions),
        selector=f(batch, actions),
        a_t=rng.integers(0, actions, batch).astype(np.int32),
        probs_t=probs,
    )


# --------------------------------------------------------------------------- TD family


def call(name, x, fn=None, **kw):
    """Calls one of the four Q-family functions on the inputs dict x."""
    fn = fn or getattr(value, name)
    args = (x["q_tm1"], x["a_tm1"], x["r_t"], x["discount_t"], x["q_t"])
    extra = {
        "q_learning": (),
        "double_q_learning": (x["selector"],),
        "sarsa": (x["a_t"],),
        "expected_sarsa": (x["probs_t"],),
    }[name]
    return fn(*args, *extra, **kw)


Q_FAMILY = ["q_learning", "double_q_learning", "sarsa", "expected_sarsa"]
REF_KIND = {
    "q_learning": ("q", None),
    "double_q_learning": ("double", "selector"),
    "sarsa": ("sarsa", "a_t"),
    "expected_sarsa": ("expected", "probs_t"),
}


@pytest.mark.parametrize("name", Q_FAMILY)
def test_q_family_matches_loop_and_rlax(name):
    x = random_q_inputs(0)
    kind, extra = REF_KIND[name]
    expected = ref_q_family(
        x["q_tm1"], x["a_tm1"], x["r_t"], x["discount_t"], x["q_t"], kind, x.get(extra)
    )
    got = call(name, x)
    assert got.shape == (5,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    # rlax works on one transition; vmap it over the batch. Same sign: target − prediction.
    np.testing.assert_allclose(call(name, x, fn=jax.vmap(getattr(rlax, name))), got, rtol=RTOL)


def test_q_learning_hand_case():
    q_tm1 = jnp.array([[1.0, 2.0], [0.0, -1.0]])
    q_t = jnp.array([[3.0, 5.0], [4.0, 0.0]])
    td = value.q_learning(
        q_tm1, jnp.array([1, 0]), jnp.array([1.0, 2.0]), jnp.array([0.5, 0.0]), q_t
    )
    # row 0: 1 + 0.5·5 − 2 = 1.5; row 1 is terminal: 2 + 0 − 0 = 2
    np.testing.assert_allclose(td, [1.5, 2.0])


def test_double_q_uses_selector_argmax_and_value_net():
    q_tm1 = jnp.zeros((1, 3))
    q_value = jnp.array([[10.0, 20.0, 30.0]])
    q_selector = jnp.array([[0.0, 1.0, -1.0]])  # picks action 1, evaluated by the value net: 20
    td = value.double_q_learning(q_tm1, jnp.array([0]), 0.0, 1.0, q_value, q_selector)
    np.testing.assert_allclose(td, [20.0])


def test_td_error_matches_rlax_and_terminal():
    rng = np.random.default_rng(1)
    v_tm1, r, v_t = (rng.normal(size=6).astype(np.float32) for _ in range(3))
    d = np.array([0.9, 0.0, 0.9, 0.9, 0.0, 0.9], np.float32)
    got = value.td_error(v_tm1, r, d, v_t)
    np.testing.assert_allclose(got, r + d * v_t - v_tm1, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got, jax.vmap(rlax.td_learning)(v_tm1, r, d, v_t), rtol=RTOL)
    np.testing.assert_allclose(jax.jit(value.td_error)(v_tm1, r, d, v_t), got, rtol=1e-6)
    vm = jax.vmap(value.td_error)(*(a.reshape(2, 3) for a in (v_tm1, r, d, v_t)))
    np.testing.assert_allclose(vm.reshape(-1), got, rtol=1e-6)
    # scalar discount broadcasts
    np.testing.assert_allclose(value.td_error(v_tm1, r, 0.5, v_t), r + 0.5 * v_t - v_tm1, rtol=RTOL)


@pytest.mark.parametrize("name", Q_FAMILY)
def test_q_family_jit_vmap_and_batch_axes(name):
    x = random_q_inputs(2, batch=6)
    eager = call(name, x)
    jitted = call(name, x, fn=jax.jit(getattr(value, name)))
    np.testing.assert_allclose(jitted, eager, rtol=RTOL, atol=ATOL)
    # vmap over a leading axis, and the same data as a [2, 3] batch, agree with the flat call
    split = {k: v.reshape((2, 3, *v.shape[1:])) for k, v in x.items()}
    vmapped = call(name, split, fn=jax.vmap(getattr(value, name)))
    two_axes = call(name, split)
    np.testing.assert_allclose(vmapped.reshape(-1), eager, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(two_axes.reshape(-1), eager, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", Q_FAMILY)
def test_stop_target_gradients(name):
    x = {k: jnp.asarray(v) for k, v in random_q_inputs(3).items()}

    def loss(q_t, q_tm1, stop):
        y = dict(x, q_t=q_t, q_tm1=q_tm1)
        return jnp.sum(value.squared_loss(call(name, y, stop_target_gradients=stop)))

    g_t, g_tm1 = jax.grad(loss, argnums=(0, 1))(x["q_t"], x["q_tm1"], True)
    assert np.all(np.asarray(g_t) == 0.0)
    # prediction gradient is −δ at the taken action, 0 elsewhere
    td = call(name, x)
    expected = -np.eye(3)[x["a_tm1"]] * np.asarray(td)[:, None]
    np.testing.assert_allclose(g_tm1, expected, rtol=RTOL, atol=ATOL)
    g_t_open = jax.grad(loss)(x["q_t"], x["q_tm1"], False)
    assert np.abs(np.asarray(g_t_open)).sum() > 0


def test_td_error_stop_gradient_and_finite_differences():
    v_tm1 = jnp.array([0.3, -0.2, 1.0])
    r, d, v_t = jnp.array([1.0, 0.0, 0.5]), jnp.array([0.9, 0.9, 0.0]), jnp.array([0.4, 2.0, 3.0])
    assert np.all(jax.grad(lambda v: value.td_error(v_tm1, r, d, v).sum())(v_t) == 0.0)
    open_grad = jax.grad(lambda v: value.td_error(v_tm1, r, d, v, False).sum())(v_t)
    np.testing.assert_allclose(open_grad, d)
    f = lambda v: jnp.sum(value.huber_loss(value.td_error(v, r, d, v_t), 0.5))
    check_grads(f, (v_tm1,), order=1, modes=["rev"], eps=1e-3, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        (dict(q_t=np.zeros((5, 4), np.float32)), "q_t"),
        (dict(a_tm1=np.zeros(4, np.int32)), "a_tm1"),
        (dict(a_tm1=np.zeros(5, np.float32)), "a_tm1"),
        (dict(r_t=np.zeros(4, np.float32)), "r_t"),
        (dict(discount_t=np.zeros((5, 1), np.float32)), "discount_t"),
        (dict(q_tm1=np.float32(1.0), q_t=np.float32(1.0)), "q_tm1"),
    ],
)
def test_q_learning_bad_shapes(kwargs, arg):
    x = random_q_inputs(0)
    x.update(kwargs)
    with pytest.raises(ValueError, match=f"`{arg}`"):
        call("q_learning", x)


def test_other_bad_shapes_name_the_argument():
    x = random_q_inputs(0)
    with pytest.raises(ValueError, match="`q_t_selector`"):
        value.double_q_learning(
            x["q_tm1"], x["a_tm1"], x["r_t"], x["discount_t"], x["q_t"], x["selector"][:, :2]
        )
    with pytest.raises(ValueError, match="`a_t`"):
        value.sarsa(x["q_tm1"], x["a_tm1"], x["r_t"], x["discount_t"], x["q_t"], x["a_t"][:3])
    with pytest.raises(ValueError, match="`probs_t`"):
        value.expected_sarsa(x["q_tm1"], x["a_tm1"], x["r_t"], 0.9, x["q_t"], x["probs_t"][:2])
    with pytest.raises(ValueError, match="`v_t`"):
        value.td_error(np.zeros(3), 0.0, 0.9, np.zeros(4))
    with pytest.raises(ValueError, match="`targets`"):
        value.clipped_value_loss(np.zeros(3), np.zeros(3), np.zeros((3, 1)), 0.2)
    with pytest.raises(ValueError, match="`delta`"):
        value.huber_loss(np.zeros(3), delta=0.0)
    with pytest.raises(ValueError, match="`clip_eps`"):
        value.clipped_value_loss(np.zeros(3), np.zeros(3), np.zeros(3), -0.1)


# --------------------------------------------------------------------------- n-step target


def test_n_step_truncation_bootstraps_termination_does_not():
    r = jnp.array([1.0, 2.0, 4.0])
    boot = jnp.array([10.0, 20.0, 40.0])
    g = 0.5
    none = jnp.zeros(3)
    # no episode end: 1 + .5·2 + .25·4 + .125·40 = 8
    np.testing.assert_allclose(value.n_step_q_target(r, boot, none, none, g), 8.0)
    # truncated at step 1: 1 + .5·2 + .25·20 = 7
    trunc_done = jnp.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(value.n_step_q_target(r, boot, none, trunc_done, g), 7.0)
    # terminated at step 1: 1 + .5·2 = 2
    np.testing.assert_allclose(value.n_step_q_target(r, boot, trunc_done, trunc_done, g), 2.0)
    # terminated at step 0: r_0 only
    first = jnp.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(value.n_step_q_target(r, boot, first, first, g), 1.0)


def test_n_step_ignores_non_finite_after_the_cut():
    r = jnp.array([1.0, jnp.nan, jnp.inf])
    boot = jnp.array([3.0, jnp.nan, -jnp.inf])
    done = jnp.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(value.n_step_q_target(r, boot, jnp.zeros(3), done, 0.9), 1 + 0.9 * 3)


def test_n_step_one_step_equals_q_learning_target():
    x = random_q_inputs(4)
    td = value.q_learning(x["q_tm1"], x["a_tm1"], x["r_t"], x["discount_t"], x["q_t"])
    target = td + np.take_along_axis(x["q_tm1"], x["a_tm1"][:, None], -1)[:, 0]
    term = (x["discount_t"] == 0).astype(np.float32)
    got = value.n_step_q_target(x["r_t"][None], x["q_t"].max(-1)[None], term[None], term[None], 0.9)
    np.testing.assert_allclose(got, target, rtol=RTOL, atol=ATOL)


@st.composite
def windows(draw):
    """8 random windows of length n with per-window discounts (few shapes, few compiles)."""
    n = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    p_term, p_trunc = draw(st.sampled_from([0.0, 0.2, 0.5])), draw(st.sampled_from([0.0, 0.3]))
    term = rng.random((n, 8)) < p_term
    done = term | (rng.random((n, 8)) < p_trunc)
    gamma = rng.choice([0.0, 0.5, 0.99, 1.0], size=8).astype(np.float32)
    rewards = rng.normal(size=(n, 8)).astype(np.float32)
    return rewards, rng.normal(size=(n, 8)).astype(np.float32), term, done, gamma


_n_step_jit = jax.jit(value.n_step_q_target)
_returns_jit = jax.jit(returns.n_step_returns, static_argnums=5)


@settings(max_examples=30, deadline=None)
@given(windows())
def test_n_step_property_against_loop_and_returns(w):
    rewards, boot, term, done, gamma = w
    got = np.asarray(_n_step_jit(rewards, boot, term, done, gamma))
    expected = [
        ref_n_step(rewards[:, b], boot[:, b], term[:, b], done[:, b], gamma[b])
        for b in range(rewards.shape[1])
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the lead's n-step returns at t = 0 over the same window agree
    n = rewards.shape[0]
    from_returns = _returns_jit(rewards, boot, term, done, gamma, n)[0]
    np.testing.assert_allclose(got, from_returns, rtol=1e-5, atol=1e-5)


def test_n_step_per_batch_and_per_step_gamma_and_transforms():
    rng = np.random.default_rng(5)
    r, boot = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    term = np.zeros((4, 3), bool)
    term[1, 0] = True
    done = term.copy()
    done[2, 1] = True
    gammas = np.array([0.5, 0.9, 1.0])
    got = value.n_step_q_target(r, boot, term, done, gammas)
    for b in range(3):
        ref = ref_n_step(r[:, b], boot[:, b], term[:, b], done[:, b], gammas[b])
        np.testing.assert_allclose(got[b], ref, rtol=1e-5)
    per_step = np.broadcast_to(gammas, (4, 3))
    np.testing.assert_allclose(value.n_step_q_target(r, boot, term, done, per_step), got, rtol=1e-6)
    args = tuple(jnp.asarray(a, jnp.float32) for a in (r, boot, term, done))
    jitted = jax.jit(value.n_step_q_target)(*args, 0.9)
    vmapped = jax.vmap(value.n_step_q_target, in_axes=(1, 1, 1, 1, None))(*args, 0.9)
    np.testing.assert_allclose(jitted, value.n_step_q_target(*args, 0.9), rtol=1e-6)
    np.testing.assert_allclose(vmapped, jitted, rtol=1e-6)
    assert np.all(
        jax.grad(lambda b: value.n_step_q_target(r, b, term, done, 0.9).sum())(args[1]) == 0
    )
    with pytest.raises(ValueError, match="`done`"):
        value.n_step_q_target(r, boot, term, done[:3], 0.9)
    with pytest.raises(ValueError, match="`gamma`"):
        value.n_step_q_target(r, boot, term, done, np.ones(4))


# --------------------------------------------------------------------------- losses


def test_huber_and_squared_losses():
    x = np.linspace(-3, 3, 13).astype(np.float32)
    for delta in (0.5, 1.0, 2.0):
        got = value.huber_loss(x, delta)
        np.testing.assert_allclose(got, ref_huber(x, delta), rtol=1e-6)
        np.testing.assert_allclose(got, rlax.huber_loss(x, delta), rtol=1e-6)
    np.testing.assert_allclose(value.squared_loss(x), 0.5 * x**2)
    # Huber's gradient is the error clipped to [−δ, δ]
    np.testing.assert_allclose(
        jax.grad(lambda v: value.huber_loss(v, 1.5).sum())(x), np.clip(x, -1.5, 1.5)
    )
    x_off = jnp.array([-2.3, -0.4, 0.2, 1.7])  # away from the kinks at ±δ
    check_grads(lambda v: value.huber_loss(v, 1.0).sum(), (x_off,), 1, modes=["rev"], eps=1e-3)
    check_grads(lambda v: value.squared_loss(v).sum(), (x_off,), 1, modes=["rev"], eps=1e-3)


def test_clipped_value_loss():
    rng = np.random.default_rng(6)
    v, old, g = (rng.normal(size=(3, 4)).astype(np.float32) for _ in range(3))
    got = value.clipped_value_loss(v, old, g, 0.2)
    np.testing.assert_allclose(got, ref_clipped_value(v, old, g, 0.2), rtol=1e-5, atol=1e-6)
    # hand case: v moved 1.0 past old = 0 towards nothing; G = 0.5 → max((1−.5)², (.2−.5)²)/2
    np.testing.assert_allclose(value.clipped_value_loss(1.0, 0.0, 0.5, 0.2), 0.125)
    # inside the clip range it is the plain squared error
    np.testing.assert_allclose(value.clipped_value_loss(0.1, 0.0, 1.0, 0.2), 0.5 * 0.81, rtol=1e-6)
    jitted = jax.jit(value.clipped_value_loss)(v, old, g, 0.2)
    np.testing.assert_allclose(jitted, got, rtol=1e-6)
    np.testing.assert_allclose(
        jax.vmap(value.clipped_value_loss, (0, 0, 0, None))(v, old, g, 0.2), got, rtol=1e-6
    )
    f = lambda x: value.clipped_value_loss(x, jnp.asarray(old), jnp.asarray(g), 0.2).sum()
    check_grads(f, (jnp.asarray(v),), 1, modes=["rev"], eps=1e-3, atol=1e-2, rtol=1e-2)
    # no gradient into the targets or the old values
    assert jax.grad(lambda t: value.clipped_value_loss(1.0, 0.0, t, 0.2))(0.5) == 0.0
    assert jax.grad(lambda o: value.clipped_value_loss(1.0, o, 0.5, 0.2))(0.0) == 0.0


def test_bf16_preserved_and_float32_out():
    x = jnp.ones(3, jnp.bfloat16)
    assert value.huber_loss(x).dtype == jnp.bfloat16
    assert (
        value.td_error(np.zeros(3, np.float32), 1, 1, np.zeros(3, np.float32)).dtype == jnp.float32
    )
