"""Probe environments give the documented observations, rewards, episode ends and values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.envs import make
from jaxrl.envs.probes import ProbeTruncation

GAMMA = 0.9
T = 40  # steps per rollout


def rollout(env, params, key, actions):
    """Steps one env through ``actions [T, ...]``; returns numpy arrays of everything."""

    def body(carry, inputs):
        obs, state = carry
        k, a = inputs
        next_obs, state, r, term, trunc, info = env.step(k, state, a, params)
        out = dict(
            obs=obs,
            action=a,
            reward=r,
            terminated=term,
            truncated=trunc,
            final_obs=info["final_observation"],
            next_obs=next_obs,
        )
        return (next_obs, state), out

    k0, k1 = jax.random.split(key)
    carry = env.reset(k0, params)
    _, out = jax.lax.scan(body, carry, (jax.random.split(k1, len(actions)), actions))
    return {k: np.asarray(v) for k, v in out.items()}


def random_actions(env, params, key, n=T):
    space = env.action_space(params)
    if env.continuous:
        return jax.random.uniform(key, (n, 1), minval=-1.5, maxval=1.5)  # includes out of range
    return jax.random.randint(key, (n,), 0, space.n)


def ref_reward(stem, continuous, obs, action):
    """Slow reference of the documented reward of one step (numpy floats)."""
    o = float(obs[0])
    if continuous:
        a = float(np.clip(action[0], -1, 1))
    else:
        a = int(action)
    if stem in ("Probe1", "ProbeTruncation"):
        return 1.0
    if stem == "Probe2":
        return o
    if stem == "Probe3":
        return 1.0 if o == 1.0 else 0.0
    if stem == "Probe4":
        return 1 - (a - 0.5) ** 2 if continuous else (1.0 if a == 1 else -1.0)
    if stem == "Probe5":
        if continuous:
            return 1 - (a - 0.5 * o) ** 2
        return 1.0 if (a == 1) == (o > 0) else -1.0
    raise AssertionError(stem)


STEMS = ["Probe1", "Probe2", "Probe3", "Probe4", "Probe5", "ProbeTruncation"]
CASES = [(s, c) for s in STEMS for c in (False, True)]


def env_id(stem, continuous):
    return f"{stem}{'Continuous' if continuous else ''}-v0"


@pytest.mark.parametrize("stem,continuous", CASES)
def test_probe_rewards_episode_ends_and_values(stem, continuous):
    """One rollout with random actions (some outside [−1, 1]) checks the documented
    observations, rewards and episode ends; ``analytic_q`` must equal the reward of each
    step plus γ·V* of the next observation, and ``analytic_value`` the best ``analytic_q``."""
    env, params = make(env_id(stem, continuous))
    assert env.name == env_id(stem, continuous)
    out = rollout(env, params, jax.random.key(3), random_actions(env, params, jax.random.key(4)))
    obs, act, rew = out["obs"], out["action"], out["reward"]
    assert obs.shape == (T, 1) and obs.dtype == np.float32 and rew.dtype == np.float32
    space = env.action_space(params)
    if continuous:
        assert space.shape == (1,) and space.low == -1.0 and space.high == 1.0
    else:
        assert space.n == (2 if stem in ("Probe4", "Probe5") else 1)
    assert env.observation_space(params).shape == (1,)
    for t in range(T):
        np.testing.assert_allclose(
            rew[t], ref_reward(stem, continuous, obs[t], act[t]), rtol=1e-6, atol=1e-6
        )
    # Episode ends: terminated (never truncated) except in ProbeTruncation.
    if stem == "ProbeTruncation":
        n = params.max_steps_in_episode
        assert n == 5
        assert not out["terminated"].any()
        np.testing.assert_array_equal(out["truncated"], (np.arange(T) + 1) % n == 0)
        assert (obs == 0).all()
    elif stem == "Probe3":
        assert not out["truncated"].any()
        np.testing.assert_array_equal(out["terminated"], np.arange(T) % 2 == 1)
        np.testing.assert_array_equal(obs[:, 0], np.arange(T) % 2)
    else:
        assert out["terminated"].all() and not out["truncated"].any()
    if stem in ("Probe2", "Probe5"):
        assert set(obs[:, 0].tolist()) == {-1.0, 1.0}
    elif stem in ("Probe1", "Probe4"):
        assert (obs == 0).all()
    # Bellman check of the documented values on every transition of the rollout:
    # Q*(s, a) = r + γ·(1 − terminated)·V*(s'), with s' the real next observation.
    q = np.asarray(env.analytic_q(jnp.asarray(obs), jnp.asarray(act), GAMMA))
    v_next = np.asarray(env.analytic_value(jnp.asarray(out["final_obs"]), GAMMA))
    np.testing.assert_allclose(q, rew + GAMMA * (1 - out["terminated"]) * v_next, rtol=1e-5)
    # V*(s) = max_a Q*(s, a), attained at optimal_action(s); the documented numbers.
    obs_grid = jnp.array([[0.0], [1.0], [-1.0]])
    if continuous:
        grid = jnp.linspace(-1, 1, 41)[:, None, None] * jnp.ones((1, 3, 1))
    else:
        grid = jnp.arange(space.n)[:, None] * jnp.ones((1, 3), jnp.int32)
    q_all = np.asarray(jax.vmap(lambda a: env.analytic_q(obs_grid, a, GAMMA))(grid))
    v = np.asarray(env.analytic_value(obs_grid, GAMMA))
    np.testing.assert_allclose(v, q_all.max(0), atol=1e-6)
    expected = {
        "Probe1": [1, 1, 1],
        "Probe2": [0, 1, -1],  # V*(obs) = obs (0 is not a reachable observation)
        "Probe3": [GAMMA, 1, GAMMA],  # −1 is not an observation of probe 3 (read as 0)
        "Probe4": [1, 1, 1],
        "Probe5": [1, 1, 1],
        "ProbeTruncation": [1 / (1 - GAMMA)] * 3,
    }[stem]
    np.testing.assert_allclose(v, expected, rtol=1e-6)


@pytest.mark.parametrize("max_steps", [3, 5])
def test_truncation_probe_values(max_steps):
    """Iterating TD(0) on the rollout's transitions: bootstrapping through truncation
    converges to 1/(1−γ); treating truncation as terminal converges to the documented
    TD(0) fixed point, and the mean return-to-go equals the documented Monte Carlo value."""
    gamma = 0.95
    env, params = make("ProbeTruncation-v0", max_steps_in_episode=max_steps)
    n = max_steps * 8
    out = rollout(env, params, jax.random.key(0), jnp.zeros((n,), jnp.int32))
    r, term, trunc = out["reward"], out["terminated"], out["truncated"]
    assert trunc.sum() == 8 and not term.any()
    v_right, v_wrong = 0.0, 0.0
    for _ in range(3000):  # one state: V ← mean over transitions of the TD target
        v_right = np.mean(r + gamma * (1 - term) * v_right)
        v_wrong = np.mean(r + gamma * (1 - (term | trunc)) * v_wrong)
    wrong = ProbeTruncation.truncation_as_terminal_values(gamma, max_steps)
    np.testing.assert_allclose(v_right, env.analytic_value(jnp.zeros((1,)), gamma), rtol=1e-4)
    np.testing.assert_allclose(v_wrong, wrong.td0, rtol=1e-5)
    # Monte Carlo: returns-to-go cut at truncation, averaged over visited steps.
    g, rtg = 0.0, np.zeros(n)
    for t in range(n - 1, -1, -1):
        g = r[t] + gamma * (0.0 if (term[t] or trunc[t]) else g)
        rtg[t] = g
    np.testing.assert_allclose(rtg.mean(), wrong.monte_carlo, rtol=1e-5)
    assert wrong.monte_carlo < wrong.td0 < 1 / (1 - gamma)


def test_truncation_probe_documented_numbers():
    wrong = ProbeTruncation.truncation_as_terminal_values(0.99, 5)
    assert abs(float(wrong.td0) - 4.808) < 1e-3
    assert abs(float(wrong.monte_carlo) - 2.960) < 1e-3
