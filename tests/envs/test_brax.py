"""Brax environments behind the gymnax interface (brax is an optional extra, not a test
dependency: its import and first compile take tens of seconds, so this file is skipped where
it is not installed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("brax")

from jaxrl import envs  # noqa: E402
from jaxrl.agents import ppo  # noqa: E402
from jaxrl.run import train  # noqa: E402


def test_time_limit_truncates_and_a_fall_terminates():
    env, params = envs.make("brax:inverted_pendulum")
    assert params.max_steps_in_episode == 1000
    assert env.action_space(params).shape == (1,)

    def run(push, limit, key):
        p = params.replace(max_steps_in_episode=limit)
        obs, state = env.reset(key, p)

        def step(carry, k):
            state, obs = carry
            nobs, state, r, term, trunc, info = env.step(k, state, jnp.full((1,), push), p)
            return (state, nobs), (nobs, r, term, trunc, info["final_observation"])

        return jax.lax.scan(step, (state, obs), jax.random.split(key, 40))[1]

    pushes, limits = jnp.array([0.0, 1.0]), jnp.array([5, 1000])
    keys = jnp.stack([jax.random.PRNGKey(0)] * 2)
    nobs, r, term, trunc, final = jax.jit(jax.vmap(run))(pushes, limits, keys)
    # Unpushed, the pole stays up: truncated every 5 steps, never terminated.
    np.testing.assert_array_equal(np.flatnonzero(trunc[0]), [4, 9, 14, 19, 24, 29, 34, 39])
    assert not term[0].any()
    # Pushed, it falls: terminated (not truncated) once the angle passes 0.2 rad; the final
    # observation holds the fallen angle and the next one starts a new episode.
    t = int(np.flatnonzero(term[1])[0])
    assert not trunc[1].any() and 1 < t < 40
    assert abs(final[1, t, 1]) > 0.2 and abs(nobs[1, t, 1]) < 0.05
    np.testing.assert_array_equal(r, np.ones_like(r))


def test_unknown_name_is_one_line():
    with pytest.raises(ValueError, match=r"unknown Brax environment \(did you mean 'hopper'\?\)"):
        envs.make("brax:hoper")
    with pytest.raises(ValueError, match="unknown backend"):
        envs.make("brax:hopper:warp-drive")


def test_ppo_with_observation_normalisation_runs_on_brax():
    cfg = ppo.Config(
        env_id="brax:inverted_pendulum",
        total_timesteps=2 * 4 * 32,
        num_envs=4,
        num_steps=32,
        num_minibatches=2,
        hidden_sizes=(16,),
        normalize_obs=True,
    )
    res = train(ppo, cfg, [0], None, progress=False)
    m = res.metrics
    assert np.isfinite(m["policy_loss"]).all() and np.isfinite(m["value_loss"]).all()
    # The pendulum falls within 64 steps under a random policy: episodes end and are counted.
    assert np.nansum(m["episodes"]) > 0 and np.nanmax(m["episode_return"]) > 1
