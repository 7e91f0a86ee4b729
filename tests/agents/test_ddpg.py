"""DDPG: learns the observation × action probe (two seeds under vmap), compiles once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import ddpg


def test_learns_probe5_two_seeds_compiles_once_reproducible():
    cfg = ddpg.Config(
        env_id="Probe5Continuous-v0",
        num_envs=4,
        buffer_size=1_000,
        batch_size=64,
        steps_per_update=400,
        hidden_sizes=(32, 32),
        learning_starts=200,
        total_timesteps=4_000,
        gamma=0.9,
        tau=0.05,
        actor_lr=3e-3,
        critic_lr=3e-3,
        exploration_noise=0.3,
    )
    traces = []
    train_fn = ddpg.make_train(cfg)

    def train_one(key):
        traces.append(1)  # runs only while tracing
        return train_fn(key)

    run = jax.jit(jax.vmap(train_one))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    state, metrics = run(keys)
    env, _ = envs.make(cfg.env_id)
    actor, critic = ddpg.make_networks(cfg)
    obs = jnp.array([[-1.0], [1.0]])
    for seed in range(2):
        learner = jax.tree.map(lambda x, s=seed: x[s], state.learner)
        actions = actor.apply(learner.actor_params, obs)
        q = critic.apply(learner.critic_params, obs, actions)
        np.testing.assert_allclose(actions, env.optimal_action(obs), atol=0.1)
        np.testing.assert_allclose(q, env.analytic_q(obs, actions, cfg.gamma), atol=0.1)
    assert metrics["td_loss"].shape == (2, 10)
    _, again = run(keys)
    assert len(traces) == 1
    jax.tree.map(np.testing.assert_array_equal, metrics, again)


def test_one_critic_and_bad_config():
    cfg = ddpg.Config(env_id="Probe1Continuous-v0")
    _, critic = ddpg.make_networks(cfg)
    params = critic.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)), jnp.zeros((1, 1)))
    assert critic.apply(params, jnp.zeros((3, 1)), jnp.zeros((3, 1))).shape == (3,)
    with pytest.raises(ValueError, match=r"exploration_noise = -0.1"):
        ddpg.Config(exploration_noise=-0.1)
