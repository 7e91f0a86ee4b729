"""VecEnv equals stepping each environment separately with split keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.envs import VecEnv, make

B, T = 4, 40


def run_vec(venv, params, key, actions):
    obs, state = venv.reset(key, params)
    outs = [dict(obs=obs)]
    for t in range(len(actions)):
        obs, state, r, term, trunc, info = venv.step(
            jax.random.fold_in(key, t), state, actions[t], params
        )
        outs.append(dict(obs=obs, r=r, term=term, trunc=trunc, final=info["final_observation"]))
    return outs


def run_single(env, params, key, actions):
    """The same with B separate envs, env i using split(key, B)[i] at every call."""
    keys = jax.random.split(key, B)
    per_env = [env.reset(keys[i], params) for i in range(B)]
    outs = [dict(obs=np.stack([np.asarray(o) for o, _ in per_env]))]
    states = [s for _, s in per_env]
    for t in range(len(actions)):
        ks = jax.random.split(jax.random.fold_in(key, t), B)
        step = [env.step(ks[i], states[i], actions[t][i], params) for i in range(B)]
        states = [s[1] for s in step]
        outs.append(
            dict(
                obs=np.stack([np.asarray(s[0]) for s in step]),
                r=np.stack([np.asarray(s[2]) for s in step]),
                term=np.stack([np.asarray(s[3]) for s in step]),
                trunc=np.stack([np.asarray(s[4]) for s in step]),
                final=np.stack([np.asarray(s[5]["final_observation"]) for s in step]),
            )
        )
    return outs


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Probe5Continuous-v0"])
def test_vecenv_matches_separate_envs(env_id):
    # A short time limit so both terminations and truncations occur.
    env, params = make(env_id, max_steps_in_episode=15)
    venv = VecEnv(env, B)
    space = env.action_space(params)
    actions = jax.vmap(jax.vmap(space.sample))(
        jax.random.split(jax.random.key(5), T * B).reshape(T, B)
    )
    key = jax.random.key(0)
    vec = run_vec(venv, params, key, actions)
    single = run_single(env, params, key, actions)
    saw_term = saw_trunc = False
    for a, b in zip(vec, single, strict=True):
        for k in b:
            np.testing.assert_allclose(np.asarray(a[k]), b[k], rtol=1e-6, atol=1e-6, err_msg=k)
        if "term" in a:
            assert a["r"].dtype == jnp.float32 and a["r"].shape == (B,)
            assert a["term"].dtype == jnp.bool_ and a["trunc"].dtype == jnp.bool_
            saw_term |= bool(a["term"].any())
            saw_trunc |= bool(a["trunc"].any())
    assert saw_term
    assert saw_trunc or env_id.startswith("Probe")  # one-step probe episodes never truncate


def test_vecenv_forwards_attributes_and_default_params():
    env, params = make("CartPole-v1", max_steps_in_episode=500)
    venv = VecEnv(env, 3)
    assert venv.num_envs == 3 and venv.num_actions == 2
    assert venv.observation_space(params).shape == (4,)
    assert venv.unwrapped is env and venv.env is env
    obs, state = venv.reset(jax.random.key(0))  # params=None: the env's default params
    obs2, _ = venv.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs, obs2)
    out = venv.step(jax.random.key(1), state, jnp.array([0, 1, 1]))
    assert obs.shape == (3, 4) and out[5]["final_observation"].shape == (3, 4)
    assert out[5]["discount"].shape == (3,)


def test_vecenv_errors():
    env, params = make("CartPole-v1")
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="num_envs"):
            VecEnv(env, bad)
    with pytest.raises(ValueError, match="already batched"):
        VecEnv(VecEnv(env, 2), 2)
    venv = VecEnv(env, 3)
    _, state = venv.reset(jax.random.key(0), params)
    with pytest.raises(ValueError, match=r"leading axis must equal num_envs \(3\)"):
        venv.step(jax.random.key(1), state, jnp.zeros((2,), jnp.int32), params)
