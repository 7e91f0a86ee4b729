"""Tests for running statistics and return-based reward scaling."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# The package re-exports the function `normalize`, which shadows the module's attribute name
# on `jaxrl.core`; import_module returns the module itself.
nm = importlib.import_module("jaxrl.core.normalize")


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 17), min_size=1, max_size=5),
    shape=st.sampled_from([(), (3,), (2, 2)]),
    seed=st.integers(0, 2**16),
)
def test_merged_batches_equal_numpy_of_concatenation(sizes, shape, seed):
    rng = np.random.default_rng(seed)
    # Offset and scale differ per feature so that a wrong merge shows up.
    batches = [3.0 + 2.0 * rng.normal(size=(n, *shape)) for n in sizes]
    stats = nm.running_stats_init(shape, eps_count=0.0)
    for b in batches:
        stats = nm.running_stats_update(stats, jnp.asarray(b, jnp.float32))
    data = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats.var, data.var(0), rtol=1e-4, atol=1e-5)
    assert float(stats.count) == sum(sizes)
    assert stats.mean.shape == shape and stats.mean.dtype == jnp.float32


def test_multiple_leading_axes_equal_flattened_batch():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 5, 3)) * 2.0 + 1.0
    a = nm.running_stats_update(nm.running_stats_init((3,)), x)
    b = nm.running_stats_update(nm.running_stats_init((3,)), x.reshape(20, 3))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    # a single unbatched sample counts as one
    one = nm.running_stats_update(nm.running_stats_init((3,), eps_count=0.0), x[0, 0])
    np.testing.assert_allclose(one.mean, x[0, 0], rtol=1e-6)
    np.testing.assert_allclose(one.var, 0.0, atol=1e-7)
    assert float(one.count) == 1.0


def test_default_pseudo_count_is_a_weak_prior():
    x = np.random.default_rng(1).normal(size=(200, 2)) * 4.0 + 5.0
    stats = nm.running_stats_update(nm.running_stats_init((2,)), jnp.asarray(x, jnp.float32))
    # prior (mean 0, var 1) with weight 1e-4 against 200 samples
    w = 1e-4 / (200 + 1e-4)
    expected_mean = (1 - w) * x.mean(0)
    np.testing.assert_allclose(stats.mean, expected_mean, rtol=1e-5)
    np.testing.assert_allclose(stats.var, x.var(0), rtol=1e-3)
    np.testing.assert_allclose(stats.count, 200 + 1e-4, rtol=1e-6)


def test_update_same_under_jit_and_scan():
    x = jax.random.normal(jax.random.PRNGKey(2), (6, 8, 3))
    eager = nm.running_stats_init((3,))
    for chunk in x:
        eager = nm.running_stats_update(eager, chunk)
    scanned, _ = jax.jit(
        lambda s, xs: jax.lax.scan(lambda c, b: (nm.running_stats_update(c, b), None), s, xs)
    )(nm.running_stats_init((3,)), x)
    for u, v in zip(eager, scanned, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5)


def test_normalize_and_denormalize():
    x = jax.random.normal(jax.random.PRNGKey(3), (500, 2)) * jnp.array([0.5, 10.0]) + 7.0
    stats = nm.running_stats_update(nm.running_stats_init((2,), eps_count=0.0), x)
    z = nm.normalize(stats, x)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-4)
    np.testing.assert_allclose(nm.denormalize(stats, z), x, rtol=1e-5, atol=1e-5)
    clipped = nm.normalize(stats, x, clip=1.0)
    assert float(jnp.abs(clipped).max()) <= 1.0
    np.testing.assert_allclose(jnp.clip(z, -1.0, 1.0), clipped)
    np.testing.assert_allclose(jax.jit(nm.normalize)(stats, x), z, rtol=1e-6)
    # bf16 in, bf16 out
    assert nm.normalize(stats, x.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def _reference_reward_scaling(rewards, dones, gamma, eps=1e-8):
    """Slow loop: G ← γG + r; scale by the std of all G so far (prior var 1, count 1e-4)."""
    num_envs = rewards.shape[1]
    g = np.zeros(num_envs)
    seen = []
    out = np.zeros_like(rewards, dtype=np.float64)
    for t in range(len(rewards)):
        g = gamma * g + rewards[t]
        seen.extend(g.tolist())
        # all returns so far pooled with the prior: c pseudo-samples of mean 0, variance 1
        n, c = len(seen), 1e-4
        var = (np.var(seen) * n + 1.0 * c + np.mean(seen) ** 2 * c * n / (n + c)) / (n + c)
        out[t] = rewards[t] / np.sqrt(var + eps)
        g = np.where(dones[t], 0.0, g)
    return out


def test_reward_scaler_matches_reference_loop():
    rng = np.random.default_rng(4)
    T, B, gamma = 30, 3, 0.9
    rewards = rng.normal(size=(T, B)) + 1.0
    dones = rng.random(size=(T, B)) < 0.15
    state = nm.reward_scaler_init(B)
    step = jax.jit(nm.reward_scaler_update)
    scaled = []
    for t in range(T):
        r, state = step(state, jnp.asarray(rewards[t], jnp.float32), jnp.asarray(dones[t]), gamma)
        scaled.append(r)
    np.testing.assert_allclose(
        np.stack(scaled), _reference_reward_scaling(rewards, dones, gamma), rtol=1e-4
    )


def test_reward_scaler_resets_return_at_episode_end():
    state = nm.reward_scaler_init(2)
    r = jnp.array([1.0, 1.0])
    _, state = nm.reward_scaler_update(state, r, jnp.array([False, False]), 0.5)
    _, state = nm.reward_scaler_update(state, r, jnp.array([True, False]), 0.5)
    np.testing.assert_allclose(state.returns, [0.0, 1.5])
    _, state = nm.reward_scaler_update(state, r, jnp.array([False, False]), 0.5)
    np.testing.assert_allclose(state.returns, [1.0, 1.75])
    # the scale divides, keeping the sign of the rewards
    scaled, _ = nm.reward_scaler_update(state, jnp.array([-2.0, 3.0]), jnp.zeros(2), 0.5, clip=1.0)
    assert float(scaled[0]) == -1.0 and float(scaled[1]) == 1.0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda s: nm.running_stats_update(s, jnp.zeros((4, 2))), "batch"),
        (lambda s: nm.running_stats_update(s, jnp.zeros((0, 3))), "batch"),
        (lambda s: nm.running_stats_init((3,), eps_count=-1.0), "eps_count"),
        (lambda s: nm.normalize(s, jnp.zeros((4, 2))), "`x`"),
        (lambda s: nm.normalize(s, jnp.zeros(3), clip=-1.0), "clip"),
        (lambda s: nm.denormalize(s, jnp.zeros((3, 1))), "`x`"),
        (lambda s: nm.reward_scaler_init(0), "num_envs"),
        (
            lambda s: nm.reward_scaler_update(
                nm.reward_scaler_init(2), jnp.ones(2), jnp.ones(2), 1.5
            ),
            "gamma",
        ),
        (
            lambda s: nm.reward_scaler_update(
                nm.reward_scaler_init(2), jnp.ones(3), jnp.ones(3), 0.9
            ),
            "returns",
        ),
    ],
)
def test_bad_inputs_raise_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call(nm.running_stats_init((3,)))


def test_public_names_have_docstrings():
    for name in nm.__all__:
        assert getattr(nm, name).__doc__, name
