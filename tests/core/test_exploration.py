"""Tests for exploration: ε-greedy, Boltzmann, Gaussian and OU noise, schedules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core import exploration as ex

N_SAMPLES = 40_000


def _reference_eps_greedy(q, eps):
    """Slow loop: ε spread uniformly, 1 − ε split among the maximal actions."""
    q = np.asarray(q, np.float64)
    out = np.zeros_like(q)
    for idx in np.ndindex(q.shape[:-1]):
        row = q[idx]
        greedy = [a for a in range(len(row)) if row[a] == row.max()]
        e = float(np.broadcast_to(eps, q.shape[:-1])[idx])
        for a in range(len(row)):
            out[idx + (a,)] = e / len(row) + ((1 - e) / len(greedy) if a in greedy else 0.0)
    return out


def _assert_frequencies_match(actions, probs, num_actions):
    """Empirical frequencies within 5 standard errors of the probabilities."""
    counts = np.bincount(np.asarray(actions).ravel(), minlength=num_actions)
    freq = counts / counts.sum()
    p = np.asarray(probs, np.float64)
    se = np.sqrt(p * (1 - p) / counts.sum())
    np.testing.assert_array_less(np.abs(freq - p), 5 * se + 1e-9)


def test_epsilon_greedy_probs_match_reference_with_ties():
    q = jnp.array([[1.0, 3.0, 3.0, 0.0], [2.0, 1.0, 0.0, -1.0], [0.5, 0.5, 0.5, 0.5]])
    for eps in (0.0, 0.1, 1.0):
        probs = ex.epsilon_greedy_probs(q, eps)
        np.testing.assert_allclose(probs, _reference_eps_greedy(q, eps), rtol=1e-6)
        np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    # ties share the greedy mass: 0.1/4 + 0.9/2
    np.testing.assert_allclose(ex.epsilon_greedy_probs(q, 0.1)[0, 1], 0.025 + 0.45, rtol=1e-6)


def test_epsilon_greedy_per_env_epsilon_and_batch_axes():
    q = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 5))
    eps = jnp.array([[0.0, 0.5, 1.0], [0.2, 0.3, 0.9]])
    probs = ex.epsilon_greedy_probs(q, eps)
    assert probs.shape == (2, 3, 5)
    np.testing.assert_allclose(probs, _reference_eps_greedy(q, np.asarray(eps)), rtol=1e-5)
    actions = ex.epsilon_greedy(jax.random.PRNGKey(1), q, eps)
    assert actions.shape == (2, 3) and actions.dtype == jnp.int32
    # ε = 0 is greedy
    assert int(actions[0, 0]) == int(jnp.argmax(q[0, 0]))


def test_epsilon_greedy_empirical_frequencies():
    q = jnp.array([0.3, 1.0, 1.0, -2.0, 0.0])
    eps = 0.3
    actions = ex.epsilon_greedy(jax.random.PRNGKey(2), jnp.broadcast_to(q, (N_SAMPLES, 5)), eps)
    _assert_frequencies_match(actions, ex.epsilon_greedy_probs(q, eps), 5)


def test_boltzmann_probs_and_empirical_frequencies():
    q = jnp.array([0.0, 1.0, 2.0, 0.5])
    tau = 0.7
    probs = ex.boltzmann_probs(q, tau)
    w = np.exp(np.asarray(q, np.float64) / tau)
    np.testing.assert_allclose(probs, w / w.sum(), rtol=1e-5)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    actions = ex.boltzmann(jax.random.PRNGKey(3), jnp.broadcast_to(q, (N_SAMPLES, 4)), tau)
    assert actions.dtype == jnp.int32
    _assert_frequencies_match(actions, probs, 4)


def test_boltzmann_temperature_limits():
    q = jnp.array([[0.0, 1.0, 2.0]])
    cold = ex.boltzmann_probs(q, jnp.array([1e-3]))
    np.testing.assert_allclose(cold, [[0.0, 0.0, 1.0]], atol=1e-6)
    hot = ex.boltzmann_probs(q, 1e4)
    np.testing.assert_allclose(hot, np.full((1, 3), 1 / 3), atol=1e-3)


def test_samplers_same_under_jit_and_vmap():
    key = jax.random.PRNGKey(4)
    q = jax.random.normal(key, (6, 3))
    for fn, arg in ((ex.epsilon_greedy, 0.4), (ex.boltzmann, 0.5)):
        eager = fn(key, q, arg)
        np.testing.assert_array_equal(eager, jax.jit(fn)(key, q, arg))
        np.testing.assert_array_equal(
            eager, jax.vmap(fn, in_axes=(None, None, 0))(key, q, jnp.array([arg, arg]))[0]
        )
    np.testing.assert_allclose(
        jax.jit(ex.epsilon_greedy_probs)(q, 0.4), ex.epsilon_greedy_probs(q, 0.4), rtol=1e-6
    )


def test_gaussian_noise_statistics_and_clipping():
    key = jax.random.PRNGKey(5)
    actions = jnp.full((N_SAMPLES, 2), 0.25)
    noisy = ex.gaussian_noise(key, actions, 0.3)
    noise = np.asarray(noisy - actions)
    np.testing.assert_allclose(noise.mean(0), 0.0, atol=5 * 0.3 / np.sqrt(N_SAMPLES))
    np.testing.assert_allclose(noise.std(0), 0.3, rtol=0.02)
    clipped = ex.gaussian_noise(key, actions, 0.3, low=-0.1, high=0.5)
    assert float(clipped.min()) == pytest.approx(-0.1) and float(clipped.max()) == pytest.approx(
        0.5
    )
    # Inside the bounds clipping changes nothing; the same key gives the same noise.
    inside = (noisy > -0.1) & (noisy < 0.5)
    np.testing.assert_array_equal(np.asarray(clipped)[inside], np.asarray(noisy)[inside])
    smoothed = ex.gaussian_noise(key, actions, 0.3, noise_clip=0.2)
    assert float(jnp.abs(smoothed - actions).max()) <= 0.2 + 1e-6
    np.testing.assert_allclose(jax.jit(ex.gaussian_noise)(key, actions, 0.3), noisy, atol=1e-6)


def test_ou_noise_mean_reversion_and_stationary_variance():
    theta, sigma, dt, mu = 0.5, 0.3, 0.1, 0.2
    num_chains = 4000
    state = ex.OUState(noise=jnp.ones((num_chains, 1)))
    x1, _ = ex.ou_noise_step(jax.random.PRNGKey(6), state, theta, sigma, dt, mu)
    # E[x₁ | x₀ = 1] = 1 + θ(μ − 1)dt, sd σ√dt
    np.testing.assert_allclose(
        float(x1.mean()), 1 + theta * (mu - 1) * dt, atol=5 * sigma * np.sqrt(dt / num_chains)
    )
    np.testing.assert_allclose(float(x1.std()), sigma * np.sqrt(dt), rtol=0.05)

    def step(state, key):
        x, state = ex.ou_noise_step(key, state, theta, sigma, dt, mu)
        return state, x

    keys = jax.random.split(jax.random.PRNGKey(7), 300)
    init = ex.ou_noise_init((num_chains, 1), mu=mu)
    np.testing.assert_array_equal(init.noise, np.float32(mu))
    final, _ = jax.jit(lambda s: jax.lax.scan(step, s, keys))(init)
    stationary_var = sigma**2 * dt / (1 - (1 - theta * dt) ** 2)
    np.testing.assert_allclose(
        float(final.noise.mean()), mu, atol=5 * np.sqrt(stationary_var / num_chains)
    )
    np.testing.assert_allclose(float(final.noise.var()), stationary_var, rtol=0.08)


def test_ou_noise_reset():
    state = ex.OUState(noise=jnp.arange(6.0).reshape(3, 2))
    reset = ex.ou_noise_reset(state, jnp.array([True, False, True]), mu=-1.0)
    np.testing.assert_array_equal(reset.noise, [[-1.0, -1.0], [2.0, 3.0], [-1.0, -1.0]])


def test_linear_schedule_endpoints_and_clamping():
    sched = ex.linear_schedule(1.0, 0.05, 100)
    counts = jnp.array([0, 50, 100, 1000])
    np.testing.assert_allclose(sched(counts), [1.0, 0.525, 0.05, 0.05], rtol=1e-6)
    np.testing.assert_allclose(jax.jit(sched)(counts), sched(counts), rtol=1e-6)
    assert sched(jnp.int32(100)).dtype == jnp.float32
    delayed = ex.linear_schedule(0.0, 2.0, 10, delay=5)
    np.testing.assert_allclose(delayed(jnp.array([0, 5, 10, 15, 99])), [0, 0, 1, 2, 2], atol=1e-6)
    # traced count inside a scan
    _, vals = jax.lax.scan(lambda c, _: (c + 1, sched(c)), jnp.int32(0), None, length=101)
    np.testing.assert_allclose(vals, np.linspace(1.0, 0.05, 101), rtol=1e-5)


def test_exponential_schedule_endpoints():
    sched = ex.exponential_schedule(1.0, 0.1, 0.9)
    t = np.arange(0, 40)
    expected = np.maximum(0.1, 0.9**t)
    np.testing.assert_allclose(sched(jnp.asarray(t)), expected, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(sched)(jnp.asarray(t)), expected, rtol=1e-5)
    assert float(sched(0)) == 1.0 and float(sched(22)) == pytest.approx(0.1)
    grow = ex.exponential_schedule(0.4, 1.0, 1.1)
    np.testing.assert_allclose(grow(jnp.array([0, 1, 100])), [0.4, 0.44, 1.0], rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda q, k: ex.epsilon_greedy_probs(q, 1.5), "epsilon"),
        (lambda q, k: ex.epsilon_greedy(k, q, -0.1), "epsilon"),
        (lambda q, k: ex.boltzmann_probs(q, 0.0), "temperature"),
        (lambda q, k: ex.boltzmann(k, q, -1.0), "temperature"),
        (lambda q, k: ex.epsilon_greedy_probs(q, jnp.zeros(4)), "epsilon"),
        (lambda q, k: ex.gaussian_noise(k, q, -0.1), "std"),
        (lambda q, k: ex.gaussian_noise(k, q, 0.1, noise_clip=-1.0), "noise_clip"),
        (lambda q, k: ex.ou_noise_step(k, ex.ou_noise_init((2,)), dt=0.0), "dt"),
        (lambda q, k: ex.ou_noise_step(k, ex.ou_noise_init((2,)), sigma=-1.0), "sigma"),
        (lambda q, k: ex.ou_noise_reset(ex.ou_noise_init((2, 3)), jnp.zeros(3)), "done"),
        (lambda q, k: ex.linear_schedule(1.0, 0.0, 0), "duration"),
        (lambda q, k: ex.exponential_schedule(1.0, 0.1, 1.5), "decay_rate"),
        (lambda q, k: ex.exponential_schedule(0.0, 0.1, 1.5), "start"),
    ],
)
def test_bad_inputs_raise_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call(jnp.zeros((3, 2)), jax.random.PRNGKey(0))


def test_public_names_have_docstrings():
    for name in ex.__all__:
        assert getattr(ex, name).__doc__, name
