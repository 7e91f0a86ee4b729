"""Wrappers: episode statistics, normalisation, reward scaling, action maps, flattening."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from jaxrl.envs import (
    ClipAction,
    EpisodeStatistics,
    FlattenObservation,
    NormalizeObservation,
    RescaleAction,
    ScaleReward,
    VecEnv,
    get_obs_stats,
    make,
)


def scan_steps(env, params, key, actions):
    """Jitted rollout of a (wrapped) env; returns the reset obs and stacked step outputs."""

    @jax.jit
    def run(key, actions):
        k0, k1 = jax.random.split(key)
        obs0, state = env.reset(k0, params)

        def body(state, inputs):
            k, a = inputs
            obs, state, r, term, trunc, info = env.step(k, state, a, params)
            return state, dict(obs=obs, r=r, term=term, trunc=trunc, info=info)

        state, out = jax.lax.scan(body, state, (jax.random.split(k1, len(actions)), actions))
        return obs0, state, out

    return run(key, actions)


def random_actions(env, params, key, t, b):
    space = env.action_space(params)
    keys = jax.random.split(key, t * b).reshape(t, b)
    return jax.vmap(jax.vmap(space.sample))(keys)


@pytest.mark.parametrize(
    "env_id,ret,length", [("ProbeTruncation-v0", 5.0, 5.0), ("Probe3-v0", 1.0, 2.0)]
)
def test_episode_statistics_probes(env_id, ret, length):
    env, params = make(env_id)
    venv = EpisodeStatistics(VecEnv(env, 3))
    _, _, out = scan_steps(venv, params, jax.random.key(0), jnp.zeros((12, 3), jnp.int32))
    info = out["info"]
    ended = np.asarray(info["returned_episode"])
    np.testing.assert_array_equal(ended, np.asarray(out["term"] | out["trunc"]))
    period = int(length)
    expect = ((np.arange(12) + 1) % period == 0)[:, None] & np.ones((1, 3), bool)
    np.testing.assert_array_equal(ended, expect)
    np.testing.assert_allclose(np.asarray(info["episode_return"]), np.where(expect, ret, 0.0))
    np.testing.assert_allclose(np.asarray(info["episode_length"]), np.where(expect, length, 0.0))
    assert info["episode_return"].dtype == jnp.float32
    assert info["episode_length"].dtype == jnp.float32


def test_episode_statistics_cartpole_matches_manual_loop():
    env, params = make("CartPole-v1", max_steps_in_episode=30)
    b, t = 4, 120
    base = VecEnv(env, b)
    actions = random_actions(env, params, jax.random.key(1), t, b)
    key = jax.random.key(2)
    _, _, plain = scan_steps(base, params, key, actions)
    _, state, wrapped = scan_steps(EpisodeStatistics(base), params, key, actions)
    # Everything the inner env returns passes through unchanged.
    for k in ("obs", "r", "term", "trunc"):
        np.testing.assert_array_equal(np.asarray(plain[k]), np.asarray(wrapped[k]))
    for k in plain["info"]:
        np.testing.assert_array_equal(np.asarray(plain["info"][k]), np.asarray(wrapped["info"][k]))
    # Manual loop over the plain rollout.
    r, done = np.asarray(plain["r"]), np.asarray(plain["term"] | plain["trunc"])
    assert done.sum() > 8
    run_ret, run_len = np.zeros(b), np.zeros(b)
    for i in range(t):
        run_ret += r[i]
        run_len += 1
        np.testing.assert_allclose(
            wrapped["info"]["episode_return"][i], np.where(done[i], run_ret, 0)
        )
        np.testing.assert_allclose(
            wrapped["info"]["episode_length"][i], np.where(done[i], run_len, 0)
        )
        run_ret[done[i]] = 0
        run_len[done[i]] = 0
    np.testing.assert_allclose(state.episode_return, run_ret)
    np.testing.assert_array_equal(state.episode_length, run_len)


def test_episode_statistics_single_env_and_inside_vecenv():
    env, params = make("ProbeTruncation-v0", max_steps_in_episode=3)
    single = EpisodeStatistics(env)
    _, _, out = scan_steps(single, params, jax.random.key(0), jnp.zeros((6,), jnp.int32))
    np.testing.assert_allclose(out["info"]["episode_return"], [0, 0, 3, 0, 0, 3])
    batched = VecEnv(EpisodeStatistics(env), 2)
    _, _, out = scan_steps(batched, params, jax.random.key(0), jnp.zeros((6, 2), jnp.int32))
    np.testing.assert_allclose(out["info"]["episode_length"][:, 0], [0, 0, 3, 0, 0, 3])


def test_normalize_observation_stats_equal_numpy():
    env, params = make("CartPole-v1", max_steps_in_episode=15)
    b, t = 3, 40
    base = VecEnv(env, b)
    actions = random_actions(env, params, jax.random.key(1), t, b)
    key = jax.random.key(7)
    obs0, _, plain = scan_steps(base, params, key, actions)
    wrapper = NormalizeObservation(base, eps=1e-8, clip=None, eps_count=0.0)
    nobs0, state, norm = scan_steps(wrapper, params, key, actions)
    raw = np.concatenate([np.asarray(obs0)[None], np.asarray(plain["obs"])]).astype(np.float64)
    seen = raw.reshape(-1, 4)
    stats = get_obs_stats(state)
    np.testing.assert_allclose(stats.mean, seen.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats.var, seen.var(0), rtol=1e-4, atol=1e-7)
    assert float(stats.count) == seen.shape[0]
    # Each step's observation is normalised with the statistics that include it.
    for i in (0, 5, t - 1):
        upto = raw[: i + 2].reshape(-1, 4)
        mu, var = upto.mean(0), upto.var(0)
        np.testing.assert_allclose(
            norm["obs"][i], (raw[i + 1] - mu) / np.sqrt(var + 1e-8), rtol=1e-3, atol=1e-4
        )
        final = np.asarray(plain["info"]["final_observation"][i], np.float64)
        np.testing.assert_allclose(
            norm["info"]["final_observation"][i],
            (final - mu) / np.sqrt(var + 1e-8),
            rtol=1e-3,
            atol=1e-4,
        )
    mu0, var0 = raw[0].mean(0), raw[0].var(0)
    np.testing.assert_allclose(nobs0, (raw[0] - mu0) / np.sqrt(var0 + 1e-8), rtol=1e-3, atol=1e-4)
    # Episode ends pass through.
    np.testing.assert_array_equal(norm["term"], plain["term"])
    np.testing.assert_array_equal(norm["trunc"], plain["trunc"])
    np.testing.assert_array_equal(norm["r"], plain["r"])


def test_normalize_observation_clip_and_frozen():
    env, params = make("CartPole-v1")
    base = VecEnv(env, 2)
    actions = random_actions(env, params, jax.random.key(1), 10, 2)
    _, state, _ = scan_steps(NormalizeObservation(base), params, jax.random.key(0), actions)
    trained = get_obs_stats(state)
    frozen = NormalizeObservation(base, clip=0.5, frozen=True)
    assert frozen.observation_space(params).high == 0.5
    obs, st = frozen.reset(jax.random.key(3), params, obs_stats=trained)
    raw, _ = base.reset(jax.random.key(3), params)
    expect = np.clip((raw - trained.mean) / np.sqrt(trained.var + 1e-8), -0.5, 0.5)
    np.testing.assert_allclose(obs, expect, rtol=1e-5, atol=1e-6)
    obs, st2, *_ = frozen.step(jax.random.key(4), st, jnp.array([0, 1]), params)
    assert np.abs(np.asarray(obs)).max() <= 0.5
    for x, y in zip(jax.tree.leaves(trained), jax.tree.leaves(st2.obs_stats), strict=True):
        np.testing.assert_array_equal(x, y)
    # The statistics kwarg reaches NormalizeObservation through outer wrappers.
    outer = EpisodeStatistics(frozen)
    _, st3 = outer.reset(jax.random.key(3), params, obs_stats=trained)
    np.testing.assert_array_equal(get_obs_stats(st3).mean, trained.mean)
    with pytest.raises(ValueError, match="no NormalizeObservationState"):
        get_obs_stats(st3.env_state.env_state)
    with pytest.raises(ValueError, match="clip"):
        NormalizeObservation(base, clip=0.0)


def test_scale_reward_matches_numpy_reference():
    gamma, b, t = 0.9, 3, 30
    env, params = make("Pendulum-v1", max_steps_in_episode=8)
    base = VecEnv(env, b)
    actions = random_actions(env, params, jax.random.key(1), t, b)
    key = jax.random.key(5)
    _, _, plain = scan_steps(base, params, key, actions)
    _, _, scaled = scan_steps(ScaleReward(base, gamma, eps_count=0.0), params, key, actions)
    r, done = np.asarray(plain["r"], np.float64), np.asarray(plain["term"] | plain["trunc"])
    assert done.any()
    g, seen = np.zeros(b), []
    for i in range(t):
        g = gamma * g + r[i]
        seen.extend(g.tolist())
        np.testing.assert_allclose(scaled["r"][i], r[i] / np.sqrt(np.var(seen) + 1e-8), rtol=1e-4)
        g[done[i]] = 0.0
    np.testing.assert_array_equal(scaled["trunc"], plain["trunc"])
    np.testing.assert_array_equal(scaled["obs"], plain["obs"])
    with pytest.raises(ValueError, match="gamma"):
        ScaleReward(base, 1.5)


@struct.dataclass
class EchoState(environment.EnvState):
    time: int
    last: jax.Array


class EchoEnv(environment.Environment):
    """Test env: observes the action it received (unclipped); Box(−2, 3, (2,)) actions."""

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=100)

    def action_space(self, params=None):
        return spaces.Box(jnp.array([-2.0, 0.0]), jnp.array([3.0, 1.0]), (2,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)

    def reset_env(self, key, params):
        return jnp.zeros(2), EchoState(time=0, last=jnp.zeros(2))

    def step_env(self, key, state, action, params):
        action = jnp.asarray(action, jnp.float32)
        return action, EchoState(time=state.time + 1, last=action), jnp.sum(action), False, {}


def test_rescale_and_clip_action():
    env = EchoEnv()
    params = env.default_params
    rescaled = RescaleAction(VecEnv(env, 3))
    _, state = rescaled.reset(jax.random.key(0), params)
    acts = jnp.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.5]])
    obs, *_ = rescaled.step(jax.random.key(1), state, acts, params)
    np.testing.assert_allclose(obs, [[-2.0, 0.0], [3.0, 1.0], [0.5, 0.75]], rtol=1e-6)
    space = rescaled.action_space(params)
    np.testing.assert_array_equal(space.low, [-1, -1])
    np.testing.assert_array_equal(space.high, [1, 1])
    custom = RescaleAction(env, low=0.0, high=4.0)
    _, st = custom.reset(jax.random.key(0), params)
    obs, *_ = custom.step(jax.random.key(1), st, jnp.array([0.0, 4.0]), params)
    np.testing.assert_allclose(obs, [-2.0, 1.0])
    clipped = ClipAction(VecEnv(env, 2))
    _, st = clipped.reset(jax.random.key(0), params)
    obs, *_ = clipped.step(jax.random.key(1), st, jnp.array([[-5.0, 2.0], [1.0, 0.5]]), params)
    np.testing.assert_allclose(obs, [[-2.0, 1.0], [1.0, 0.5]])
    # Clip outside rescale: policy outputs beyond [−1, 1] land on the bounds.
    both = ClipAction(RescaleAction(env))
    _, st = both.reset(jax.random.key(0), params)
    obs, *_ = both.step(jax.random.key(1), st, jnp.array([7.0, -7.0]), params)
    np.testing.assert_allclose(obs, [3.0, 0.0])
    disc, _ = make("CartPole-v1")
    with pytest.raises(ValueError, match="Box"):
        RescaleAction(disc)
    with pytest.raises(ValueError, match="Box"):
        ClipAction(disc)
    with pytest.raises(ValueError, match="low < high"):
        RescaleAction(env, low=1.0, high=1.0)


@struct.dataclass
class GridState(environment.EnvState):
    time: int


class GridEnv(environment.Environment):
    """Test env: observation [2, 3] filled with the step count; truncated after 3 steps."""

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=3)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0.0, jnp.arange(6.0).reshape(2, 3), (2, 3), jnp.float32)

    def reset_env(self, key, params):
        return jnp.zeros((2, 3)), GridState(time=0)

    def step_env(self, key, state, action, params):
        t = state.time + 1
        obs = jnp.full((2, 3), t, jnp.float32) + jnp.arange(6.0).reshape(2, 3)
        return obs, GridState(time=t), jnp.float32(1.0), False, {}


def test_flatten_observation():
    env = GridEnv()
    params = env.default_params
    base = VecEnv(env, 2)
    flat = FlattenObservation(base)
    space = flat.observation_space(params)
    assert space.shape == (6,)
    np.testing.assert_array_equal(space.high, np.arange(6.0))
    actions = jnp.zeros((5, 2), jnp.int32)
    obs0, _, plain = scan_steps(base, params, jax.random.key(0), actions)
    fobs0, _, out = scan_steps(flat, params, jax.random.key(0), actions)
    np.testing.assert_array_equal(fobs0, np.asarray(obs0).reshape(2, 6))
    np.testing.assert_array_equal(out["obs"], np.asarray(plain["obs"]).reshape(5, 2, 6))
    final = np.asarray(out["info"]["final_observation"])
    np.testing.assert_array_equal(
        final, np.asarray(plain["info"]["final_observation"]).reshape(5, 2, 6)
    )
    np.testing.assert_array_equal(final[2, 0], np.arange(6.0) + 3)  # real last obs, flattened
    np.testing.assert_array_equal(out["trunc"], plain["trunc"])
    assert out["trunc"][2].all() and not out["trunc"][3].any()
    single = FlattenObservation(env)
    o, _ = single.reset(jax.random.key(0), params)
    assert o.shape == (6,)
    minatar, mparams = make("Breakout-MinAtar")
    assert FlattenObservation(minatar).observation_space(mparams).shape == (400,)


def test_full_stack_jit_and_forwarding():
    env, params = make("Pendulum-v1", max_steps_in_episode=6)
    b = 2
    base = VecEnv(env, b)
    stack = ScaleReward(
        NormalizeObservation(EpisodeStatistics(ClipAction(RescaleAction(base)))), gamma=0.99
    )
    assert stack.num_envs == b and stack.observation_space(params).shape == (3,)
    np.testing.assert_array_equal(stack.action_space(params).high, [1.0])
    assert stack.unwrapped is env
    actions = jax.random.uniform(jax.random.key(3), (13, b, 1), minval=-1, maxval=1)
    _, _, plain = scan_steps(base, params, jax.random.key(0), 2 * actions)
    _, state, out = scan_steps(stack, params, jax.random.key(0), actions)
    np.testing.assert_array_equal(out["term"], plain["term"])
    np.testing.assert_array_equal(out["trunc"], plain["trunc"])
    np.testing.assert_allclose(out["info"]["episode_length"][5], [6.0, 6.0])
    # EpisodeStatistics sits inside ScaleReward: it reports the unscaled return.
    np.testing.assert_allclose(
        out["info"]["episode_return"][5], np.asarray(plain["r"])[:6].sum(0), rtol=1e-5
    )
