"""Gymnasium ids behind the gymnax interface: the episode-end contract, errors, learning."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import ppo
from jaxrl.cli import main
from jaxrl.run import train
from jaxrl.run.evaluate import evaluate


class Countdown(gymnasium.Env):
    """Observation: steps taken in the episode; reward 1; action 1 terminates."""

    observation_space = gymnasium.spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, bool(action == 1), False, {}


gymnasium.register("JaxrlTestCountdown-v0", entry_point=Countdown, max_episode_steps=3)


def test_terminated_truncated_and_final_observation_follow_the_contract():
    env, params = envs.make("gymnasium:JaxrlTestCountdown-v0")
    assert params.max_steps_in_episode == 3
    vec = envs.EpisodeStatistics(envs.VecEnv(env, 2))
    # env 0 never terminates (truncated by the time limit after 3 steps); env 1 does at step 2.
    actions = jnp.array([[0, 0], [0, 1], [0, 0], [0, 0]], jnp.int32)

    def run(key):
        obs, state = vec.reset(key, params)

        def step(carry, a):
            state, obs = carry
            nobs, state, r, term, trunc, info = vec.step(key, state, a, params)
            return (state, nobs), (obs, nobs, r, term, trunc, info["final_observation"], info)

        return jax.lax.scan(step, (state, obs), actions)[1]

    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    obs, nobs, r, term, trunc, final, info = jax.jit(jax.vmap(run))(keys)  # two runs × 2 envs
    for run_ in range(2):
        np.testing.assert_array_equal(obs[run_, :, :, 0], [[0, 0], [1, 1], [2, 0], [0, 1]])
        np.testing.assert_array_equal(term[run_], [[0, 0], [0, 1], [0, 0], [0, 0]])
        np.testing.assert_array_equal(trunc[run_], [[0, 0], [0, 0], [1, 0], [0, 0]])
        # Where an episode ended, the next observation is the reset one and the final
        # observation is the real last one (3 after truncation, 2 after termination).
        np.testing.assert_array_equal(final[run_, :, :, 0], [[1, 1], [2, 2], [3, 1], [1, 2]])
        np.testing.assert_array_equal(nobs[run_, :, :, 0], [[1, 1], [2, 0], [0, 1], [1, 2]])
        np.testing.assert_array_equal(
            info["episode_return"][run_], [[0, 0], [0, 2], [3, 0], [0, 0]]
        )
    np.testing.assert_array_equal(r, np.ones((2, 4, 2)))


def test_unknown_id_and_missing_extra_are_one_line(monkeypatch, tmp_path, capsys):
    with pytest.raises(
        ValueError, match=r"not a registered Gymnasium id \(did you mean 'CartPole-v1'"
    ):
        envs.make("gymnasium:CartPole-v9")

    def missing(*a, **k):
        raise gymnasium.error.DependencyNotInstalled(
            "Box2D is not installed, you can install it by run `pip install swig` followed by "
            '`pip install "gymnasium[box2d]"`'
        )

    monkeypatch.setattr(gymnasium, "make", missing)
    with pytest.raises(ValueError, match=r"LunarLander-v3 needs an extra package: .*pip install"):
        envs.make("gymnasium:LunarLander-v3")
    monkeypatch.undo()
    args = ["train", "ppo", "--env", "gymnasium:NoSuchEnv-v0", "--out", str(tmp_path / "r")]
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a registered Gymnasium id" in err and len(err.splitlines()) == 1


def test_gymnasium_and_gymnax_cartpole_learn_alike(tmp_path):
    finals = {}
    # 32 updates at a 4x larger learning rate than the default: both paths reach ~200 (seeds
    # 0, 1; gymnax seeds 2, 3 too) where 80 is asked, in 40% of the steps the default needs
    # (every Gymnasium step is a host call).
    for env_id in ("gymnasium:CartPole-v1", "CartPole-v1"):
        cfg = ppo.Config(env_id=env_id, total_timesteps=16_384, num_steps=128, learning_rate=1e-3)
        out = tmp_path / env_id.replace(":", "_")
        res = train(ppo, cfg, [0, 1], out, progress=False, chunk_updates=16)
        finals[env_id] = res.summary["final_return"]["mean"]
    # A random policy averages about 22; both paths learn well beyond it.
    assert min(finals.values()) > 80, finals
    # The trained Gymnasium run evaluates through the same adapter.
    result = evaluate(tmp_path / "gymnasium_CartPole-v1", episodes=2)
    assert all(np.isfinite(r["mean"]) for r in result["runs"])
