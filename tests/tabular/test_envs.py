"""Tabular problems as gymnax environments: dynamics match their MDPs and gymnax's FrozenLake."""

from __future__ import annotations

import functools

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.misc import frozen_lake as gymnax_frozen_lake
from gymnax.wrappers.purerl import LogWrapper

from jaxrl.tabular import (
    TABULAR_ENVS,
    EnvState,
    TabularEnv,
    frozen_lake_mdp,
    make_task,
    sample_from_cdf,
)

N = 2000  # samples per (state, action)


def assert_frequencies_match(counts, p, n):
    """Empirical frequencies within 5 standard errors of p; impossible outcomes never seen."""
    freq = counts / n
    se = np.sqrt(p * (1 - p) / n)
    assert (freq[p == 0] == 0).all()
    np.testing.assert_array_less(np.abs(freq - p), 5 * se + 1e-9)


@functools.partial(jax.jit, static_argnames=("env", "make_state", "n"))
def sample_transitions(env, make_state, params, n, key):
    """Steps every (s, a) n times from s: next states, rewards, terminated, each [S, A, n]."""
    s_count, a_count = env.observation_space(params).n, env.num_actions
    # One flat vmap (it compiles faster than three nested ones).
    states = jnp.repeat(jnp.arange(s_count), a_count * n)
    actions = jnp.tile(jnp.repeat(jnp.arange(a_count), n), s_count)
    keys = jax.random.split(key, s_count * a_count * n)

    def one(s, a, k):
        _, _, r, term, _, info = env.step(k, make_state(s), a, params)
        return info["final_observation"], r, term

    out = jax.vmap(one)(states, actions, keys)
    return jax.tree.map(lambda x: x.reshape(s_count, a_count, n), out)


def gymnax_state(s):
    return gymnax_frozen_lake.EnvState(position=s, time=0)


def tabular_state(s):
    return EnvState(time=0, state=s)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(map_name="4x4", is_slippery=True),
        dict(
            map_name="4x4", is_slippery=True, success_rate=0.6, reward_schedule=(2.0, -1.0, -0.01)
        ),
        dict(map_name="8x8", is_slippery=False),
    ],
)
def test_frozen_lake_mdp_matches_gymnax_frozen_lake(kwargs):
    env, params = gymnax.make("FrozenLake-misc", **kwargs)
    mdp, layout = frozen_lake_mdp(
        kwargs["map_name"],
        kwargs["is_slippery"],
        kwargs.get("success_rate", 1 / 3),
        kwargs.get("reward_schedule", (1.0, 0.0, 0.0)),
    )
    n = N if kwargs["is_slippery"] else 4
    nxt, r, term = map(
        np.asarray, sample_transitions(env, gymnax_state, params, n, jax.random.key(0))
    )
    p = np.asarray(mdp.transitions)
    live = ~np.asarray(mdp.terminal)  # gymnax never steps from a hole or the goal
    counts = (nxt[..., None] == np.arange(p.shape[0])).sum(2)
    assert_frequencies_match(counts[live], p[live], n)
    s, a = np.meshgrid(np.arange(p.shape[0]), np.arange(4), indexing="ij")
    rewards = np.asarray(mdp.rewards)[s[..., None], a[..., None], nxt]
    np.testing.assert_array_equal(r[live], rewards[live])
    np.testing.assert_array_equal(term, np.asarray(mdp.terminal)[nxt])
    assert layout.shape == env.desc.shape
    np.testing.assert_array_equal(np.asarray(mdp.initial).reshape(layout.shape), env.desc == 0)


def test_tabular_env_samples_its_mdp():
    task = make_task("FrozenLake-4x4")
    nxt, r, term = map(
        np.asarray,
        sample_transitions(task.env, tabular_state, task.env_params, N, jax.random.key(1)),
    )
    p = np.asarray(task.mdp.transitions)
    counts = (nxt[..., None] == np.arange(p.shape[0])).sum(2)
    assert_frequencies_match(counts, p, N)
    s, a = np.meshgrid(np.arange(p.shape[0]), np.arange(p.shape[1]), indexing="ij")
    np.testing.assert_array_equal(r, np.asarray(task.mdp.rewards)[s[..., None], a[..., None], nxt])
    np.testing.assert_array_equal(term, np.asarray(task.mdp.terminal)[nxt])


def test_maximization_bias_rewards_are_gaussian_from_b_only():
    task = make_task("MaximizationBias")
    nxt, r, _ = map(
        np.asarray,
        sample_transitions(task.env, tabular_state, task.env_params, N, jax.random.key(2)),
    )
    b, a_state = 1, 2
    from_b = r[b].ravel()  # all 10 actions of B
    assert abs(from_b.mean() + 0.1) < 5 / np.sqrt(from_b.size)
    assert abs(from_b.std() - 1.0) < 0.03
    assert (nxt[b] == 0).all()
    np.testing.assert_array_equal(r[a_state, :2], 0.0)
    assert (nxt[a_state, 0] == b).all() and (nxt[a_state, 1] == 3).all()


def test_truncation_resets_and_reports_the_real_final_observation():
    task = make_task("CliffWalking", max_steps=2)
    env, params = task.env, task.env_params
    obs, state = env.reset(jax.random.key(0), params)
    assert int(obs) == 36
    obs, state, r, term, trunc, info = env.step(jax.random.key(1), state, 0, params)  # up
    assert (int(obs), float(r), bool(term), bool(trunc)) == (24, -1.0, False, False)
    obs, state, r, term, trunc, info = env.step(jax.random.key(2), state, 0, params)  # up
    assert (bool(term), bool(trunc)) == (False, True)
    assert int(info["final_observation"]) == 12  # where the agent really is
    assert int(obs) == 36 and int(state.time) == 0  # auto-reset


def test_termination_at_the_goal_and_the_cliff_sends_back_to_start():
    task = make_task("FrozenLake-4x4-nonslippery")
    env, params = task.env, task.env_params
    _, state = env.reset(jax.random.key(0), params)
    ret = 0.0
    for i, a in enumerate([2, 2, 1, 1, 1, 2]):  # right, right, down, down, down, right
        obs, state, r, term, trunc, info = env.step(jax.random.key(i), state, a, params)
        ret += float(r)
    assert bool(term) and not bool(trunc) and ret == 1.0
    assert int(info["final_observation"]) == 15 and int(obs) == 0
    cliff = make_task("CliffWalking")
    _, state = cliff.env.reset(jax.random.key(0), cliff.env_params)
    obs, state, r, term, _, _ = cliff.env.step(jax.random.key(1), state, 1, cliff.env_params)
    assert (int(obs), float(r), bool(term)) == (36, -100.0, False)


def test_gymnax_wrappers_step_a_tabular_env():
    task = make_task("CliffWalking", max_steps=1)  # every step is truncated
    env = LogWrapper(task.env)
    obs, state = env.reset(jax.random.key(0), task.env_params)

    def body(carry, k):
        obs, state = carry
        obs, state, r, term, trunc, info = env.step(k, state, 1, task.env_params)
        return (obs, state), info["returned_episode_returns"]

    _, returns = jax.lax.scan(body, (obs, state), jax.random.split(jax.random.key(1), 3))
    np.testing.assert_array_equal(returns, [-100.0, -100.0, -100.0])


def test_sample_from_cdf_frequencies_and_zero_probabilities():
    p = jnp.array([[0.0, 0.2, 0.0, 0.8, 0.0], [0.5, 0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    cdf = jnp.cumsum(p, -1)
    keys = jax.random.split(jax.random.key(0), 20000)
    idx = np.asarray(jax.jit(jax.vmap(lambda k: sample_from_cdf(k, cdf)))(keys))  # [N, 3]
    counts = (idx[..., None] == np.arange(5)).sum(0)
    assert_frequencies_match(counts, np.asarray(p), 20000)
    # A cdf whose last entry rounds below 1 never yields an index past the support.
    almost = jnp.array([0.3, 0.99999994, 0.99999994])
    many = jax.jit(jax.vmap(lambda k: sample_from_cdf(k, almost)))(keys)
    assert set(np.unique(np.asarray(many))) <= {0, 1}


def test_every_registered_task_builds():
    # Stepping is checked above on FrozenLake, Cliff Walking and the maximization-bias MDP.
    for name in TABULAR_ENVS:
        task = make_task(name)
        assert isinstance(task.env, TabularEnv) and task.name.startswith(name.split("-")[0])
        assert task.env_params.max_steps_in_episode >= 10
        if task.layout is not None:
            assert task.layout.shape[0] * task.layout.shape[1] == task.mdp.num_states
        assert task.env.observation_space(task.env_params).n == task.mdp.num_states
        assert task.env.action_space().n == task.mdp.num_actions


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown tabular environment 'Nope'.*CliffWalking"):
        make_task("Nope")
    with pytest.raises(ValueError, match="`desc` must be one of"):
        frozen_lake_mdp("5x5")
