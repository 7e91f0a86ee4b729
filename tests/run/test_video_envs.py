"""``jaxrl eval --video`` for Gymnasium (host) and Brax (compiled) environments."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.run.policies import Policy


def _constant_policy(env, env_params, action, discrete):
    act = lambda params, obs, key, det: jnp.broadcast_to(action, (obs.shape[0],) + np.shape(action))  # noqa: E731
    return Policy(act, {}, env, env_params, (), discrete)


def test_gymnasium_cartpole_video_draws_each_recorded_state(tmp_path):
    pytest.importorskip("gymnasium")
    import jax
    from PIL import Image

    from jaxrl.run.video import CARTPOLE, POLE, W, write_video
    from jaxrl.run.video_envs import record_gymnasium

    env, env_params = envs.make("gymnasium:CartPole-v1")
    policy = _constant_policy(env, env_params, jnp.int32(1), True)  # always push right
    frames, states, rewards = record_gymnasium(policy, {}, jax.random.PRNGKey(3))
    # Pushed right every step, the pole falls left within a few dozen steps.
    assert 5 < len(frames) == len(states) == len(rewards) < 60
    assert states[-1][2] < -0.15 and np.all(np.diff(states[:, 1]) > 0)  # cart speeds up
    for t in (0, len(frames) - 1):
        x, theta = states[t][0], states[t][2]
        cx = W / 2 + x * CARTPOLE["scale"]
        r = 0.8 * CARTPOLE["pole_px"]
        px = int(round(cx + r * np.sin(theta)))
        py = int(round(CARTPOLE["pivot_y"] - r * np.cos(theta)))
        assert tuple(frames[t][py, px]) == POLE
    gif = write_video(frames, tmp_path / "cartpole.gif")
    with Image.open(gif) as im:
        assert im.n_frames == len(frames)


def test_gymnasium_env_without_a_drawing_is_one_line(monkeypatch):
    gymnasium = pytest.importorskip("gymnasium")
    import jax

    from jaxrl.run.video_envs import record_gymnasium

    def missing(self):  # as Gymnasium's renderers do where pygame is not installed
        raise gymnasium.error.DependencyNotInstalled("pygame is not installed")

    env, env_params = envs.make("gymnasium:FrozenLake-v1")  # no jaxrl drawing either
    monkeypatch.setattr(type(gymnasium.make("FrozenLake-v1").unwrapped), "render", missing)
    policy = _constant_policy(env, env_params, jnp.int32(0), True)
    with pytest.raises(ValueError, match=r"^--video: cannot draw gymnasium:FrozenLake-v1 \(pygame"):
        record_gymnasium(policy, {}, jax.random.PRNGKey(0))


def test_brax_video_draws_the_pole_where_the_physics_put_it():
    pytest.importorskip("brax")
    import jax

    from jaxrl.run.video import record_episode
    from jaxrl.run.video_envs import BODY, PX_PER_M, _rotate, brax_frames, find_brax_state

    env, env_params = envs.make("brax:inverted_pendulum")
    env_params = env_params.replace(max_steps_in_episode=30)
    policy = _constant_policy(env, env_params, jnp.ones((1,)), False)  # push: the pole falls
    states, obs, rewards = record_episode(policy, {}, jax.random.PRNGKey(0))
    frames = brax_frames(env, states)
    assert len(frames) == len(obs) == len(rewards) > 3
    x = find_brax_state(states).inner.pipeline_state.x
    pos, rot = np.asarray(x.pos, np.float64), np.asarray(x.rot, np.float64)
    for t in (0, len(frames) - 1):
        # The pole (link 1) is a capsule from its hinge up 0.6 m along the link's z axis
        # turned by the geometry's half-turn: sample two thirds of the way up.
        tip_dir = _rotate(rot[t, 1], np.array([0.0, 0.0, 1.0]))
        point = pos[t, 1] + 0.4 * (tip_dir if tip_dir[2] > 0 else -tip_dir)
        cam_x = pos[t, :, 0].mean()
        px = int(round(200 + (point[0] - cam_x) * PX_PER_M))
        py = int(round(300 * 0.7 - point[2] * PX_PER_M))
        assert tuple(frames[t][py, px]) == BODY
    assert not np.array_equal(frames[0], frames[-1])
