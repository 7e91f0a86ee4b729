"""Replay buffers: prioritised sampling frequencies and weights, wrap-around, windows."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.buffers import Transition, importance_weights, make_replay_buffer


def example(obs_dim=2):
    return Transition(
        obs=jnp.zeros(obs_dim),
        action=jnp.int32(0),
        reward=jnp.float32(0),
        next_obs=jnp.zeros(obs_dim),
        terminated=jnp.bool_(False),
        truncated=jnp.bool_(False),
    )


def batch_at(t, num_envs, obs_dim=2):
    """Step t of every environment: reward = 100·env + t, obs = [t, env]."""
    env = jnp.arange(num_envs, dtype=jnp.float32)
    t = jnp.float32(t)
    return Transition(
        obs=jnp.stack([jnp.full(num_envs, t), env], axis=1),
        action=jnp.full(num_envs, 1, jnp.int32),
        reward=100.0 * env + t,
        next_obs=jnp.stack([jnp.full(num_envs, t + 1), env], axis=1),
        terminated=jnp.zeros(num_envs, bool),
        truncated=jnp.zeros(num_envs, bool),
    )


@functools.cache
def jitted(buf):
    """Compiled add and vmapped sample, one per buffer setting (buffers are hashable)."""
    return jax.jit(buf.add), jax.jit(jax.vmap(buf.sample, in_axes=(None, 0, None)))


def filled(buf, steps):
    state = buf.init(example())
    add = jitted(buf)[0]
    for t in range(steps):
        state = add(state, batch_at(t, buf.num_envs))
    return state


def draw(buf, state, num_draws, beta=1.0):
    """``num_draws`` independent samples (vmapped keys), leaves [num_draws, N, ...]."""
    keys = jax.random.split(jax.random.key(0), num_draws)
    return jitted(buf)[1](state, keys, beta)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_prioritised_frequencies_match_p_alpha(alpha):
    buf = make_replay_buffer(capacity=16, num_envs=2, batch_size=32, prioritized=True)
    state = filled(buf, 8)
    ids = jnp.arange(16)
    td = jnp.linspace(-2.0, 3.0, 16)  # includes a near-zero error: ε keeps it sampleable
    state = buf.update_priorities(state, ids, td, alpha, eps=0.01)
    p = (np.abs(np.asarray(td)) + 0.01) ** alpha
    expected = p / p.sum()
    draws = 4000
    out = draw(buf, state, draws)
    counts = np.bincount(np.asarray(out.indices).ravel(), minlength=16)
    freq = counts / counts.sum()
    m = counts.sum()
    tol = 5 * np.sqrt(expected * (1 - expected) / m) + 1e-4
    np.testing.assert_array_less(np.abs(freq - expected), tol)
    # The transitions are those of the ids: id = row·8 + t holds reward 100·row + t.
    rows, times = np.divmod(np.asarray(out.indices), 8)
    np.testing.assert_array_equal(np.asarray(out.transitions.reward), 100 * rows + times)


def test_importance_weights_match_formula():
    buf = make_replay_buffer(capacity=16, num_envs=2, batch_size=16, prioritized=True)
    state = filled(buf, 8)
    alpha, beta = 0.7, 0.4
    td = jnp.linspace(0.1, 5.0, 16)
    state = buf.update_priorities(state, jnp.arange(16), td, alpha)
    out = draw(buf, state, 50, beta)
    p = (np.abs(np.asarray(td)) + 1e-6) ** alpha
    prob = p / p.sum()
    n_valid = 16
    for idx, w in zip(np.asarray(out.indices), np.asarray(out.weights), strict=True):
        raw = (n_valid * prob[idx]) ** (-beta)
        np.testing.assert_allclose(w, raw / raw.max(), rtol=1e-5)


def test_importance_weights_function():
    probs = jnp.array([0.5, 0.1, 0.25])
    w = importance_weights(probs, 0.5)
    np.testing.assert_allclose(w, (np.array([0.5, 0.1, 0.25]) / 0.1) ** -0.5, rtol=1e-6)
    np.testing.assert_allclose(importance_weights(probs, 0.0), np.ones(3))


def test_new_transitions_get_the_largest_priority():
    buf = make_replay_buffer(capacity=8, num_envs=1, batch_size=4, prioritized=True)
    state = filled(buf, 4)
    state = buf.update_priorities(state, jnp.arange(4), jnp.array([1.0, 3.0, 0.5, 2.0]), 1.0, 0.0)
    state = buf.add(state, batch_at(4, 1))
    leaves = np.asarray(state.sum_tree_state.nodes[-state.sum_tree_state.capacity :])
    np.testing.assert_allclose(leaves[:5], [1.0, 3.0, 0.5, 2.0, 3.0])


@pytest.mark.parametrize("prioritized", [False, True])
def test_wraps_around_when_full(prioritized):
    buf = make_replay_buffer(capacity=8, num_envs=2, batch_size=16, prioritized=prioritized)
    state = filled(buf, 7)  # 14 transitions into 8 slots: each row keeps steps 3..6
    assert int(buf.size(state)) == 8
    assert float(buf.fill(state)) == 1.0
    stored = np.sort(np.asarray(state.experience.reward), axis=1)
    np.testing.assert_array_equal(stored, [[3, 4, 5, 6], [103, 104, 105, 106]])
    out = draw(buf, state, 200)
    seen = set(np.asarray(out.transitions.reward).ravel().tolist())
    assert seen == {3.0, 4.0, 5.0, 6.0, 103.0, 104.0, 105.0, 106.0}
    # next_obs is stored, not recomputed from the neighbouring slot.
    t = np.asarray(out.transitions.obs)[..., 0]
    np.testing.assert_array_equal(np.asarray(out.transitions.next_obs)[..., 0], t + 1)


def test_size_before_full():
    buf = make_replay_buffer(capacity=12, num_envs=3, batch_size=2)
    state = filled(buf, 2)
    assert int(buf.size(state)) == 6
    np.testing.assert_allclose(float(buf.fill(state)), 0.5)


@pytest.mark.parametrize("prioritized", [False, True])
def test_sequence_windows_are_consecutive_and_skip_the_write_position(prioritized):
    n = 3
    buf = make_replay_buffer(
        capacity=10, num_envs=2, batch_size=32, sequence_length=n, prioritized=prioritized
    )
    state = filled(buf, 8)  # rows hold steps 3..7; windows may start at 3, 4, 5
    out = draw(buf, state, 100)
    r = np.asarray(out.transitions.reward).reshape(-1, n)
    assert out.transitions.obs.shape[-3:] == (32, n, 2)
    np.testing.assert_array_equal(np.diff(r, axis=1), 1)  # consecutive steps of one env
    starts = set((r[:, 0] % 100).tolist())
    assert starts == {3.0, 4.0, 5.0}
    assert set((r[:, 0] // 100).tolist()) == {0.0, 1.0}


def test_uniform_frequencies_are_uniform():
    buf = make_replay_buffer(capacity=8, num_envs=2, batch_size=64)
    state = filled(buf, 4)
    out = draw(buf, state, 500)
    counts = np.unique(np.asarray(out.transitions.reward), return_counts=True)[1]
    assert len(counts) == 8
    freq = counts / counts.sum()
    np.testing.assert_array_less(np.abs(freq - 1 / 8), 5 * np.sqrt((1 / 8) * (7 / 8) / 32000))
    np.testing.assert_array_equal(np.asarray(out.weights), 1.0)


def test_add_checks_the_batch_axis():
    buf = make_replay_buffer(capacity=8, num_envs=2, batch_size=2)
    state = buf.init(example())
    with pytest.raises(ValueError, match="num_envs"):
        buf.add(state, batch_at(0, 3))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(capacity=9, num_envs=2, batch_size=1), "capacity"),
        (dict(capacity=2, num_envs=2, batch_size=1), "capacity"),
        (dict(capacity=8, num_envs=0, batch_size=1), "num_envs"),
        (dict(capacity=8, num_envs=1, batch_size=0), "batch_size"),
        (dict(capacity=8, num_envs=2, batch_size=1, sequence_length=5), "sequence_length"),
    ],
)
def test_bad_settings_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_replay_buffer(**kwargs)


def test_update_priorities_needs_a_prioritised_buffer():
    buf = make_replay_buffer(capacity=8, num_envs=1, batch_size=2)
    state = filled(buf, 2)
    with pytest.raises(ValueError, match="prioritized"):
        buf.update_priorities(state, jnp.zeros(2, jnp.int32), jnp.ones(2), 0.6)


def test_alpha_and_beta_can_be_traced():
    buf = make_replay_buffer(capacity=8, num_envs=1, batch_size=4, prioritized=True)
    state = filled(buf, 8)

    def run(alpha, beta):
        s = buf.update_priorities(state, jnp.arange(8), jnp.arange(8.0) + 1, alpha)
        return buf.sample(s, jax.random.key(1), beta).weights

    out = jax.jit(jax.vmap(run))(jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(out[0], 1.0)  # α = 0: uniform priorities, unit weights
    assert float(out[1].min()) < 1.0


def test_public_names_have_docstrings():
    from jaxrl import buffers
    from jaxrl.agents import ddpg, dqn, off_policy, sac, td3

    for module in (buffers, off_policy, dqn, ddpg, td3, sac):
        for name in module.__all__:
            assert getattr(module, name).__doc__, f"{module.__name__}.{name}"
