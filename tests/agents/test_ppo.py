"""PPO: learns the probe environments, bootstraps truncation, compiles once, is reproducible."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import ppo

# Small budgets: each probe trains in a second or two after compiling.
PROBE = dict(
    num_envs=8,
    num_steps=8,
    num_epochs=4,
    num_minibatches=2,
    hidden_sizes=(32, 32),
    learning_rate=3e-3,
    anneal_lr=False,
    ent_coef=0.0,
    gamma=0.9,
)


def train_probe(env_id, total=16_384, **overrides):
    cfg = ppo.Config(env_id=env_id, total_timesteps=total, **{**PROBE, **overrides})
    state, metrics = jax.jit(ppo.make_train(cfg))(jax.random.PRNGKey(0))
    env, _ = envs.make(env_id)
    return cfg, env, state, metrics


def values_and_policy(cfg, params, obs):
    dist, value = ppo.make_network(cfg).apply(params, obs)
    return value, dist


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize(
    "probe, observations",
    [
        ("Probe1", [[0.0]]),
        ("Probe2", [[-1.0], [1.0]]),
        ("Probe3", [[0.0], [1.0]]),
    ],
)
def test_critic_learns_probe_values(probe, observations, continuous):
    env_id = f"{probe}{'Continuous' if continuous else ''}-v0"
    cfg, env, state, _ = train_probe(env_id)
    obs = jnp.array(observations)
    value, _ = values_and_policy(cfg, state.params, obs)
    np.testing.assert_allclose(value, env.analytic_value(obs, cfg.gamma), atol=0.1)


@pytest.mark.parametrize(
    "env_id, observations",
    [("Probe4-v0", [[0.0]]), ("Probe5-v0", [[-1.0], [1.0]])],
)
def test_discrete_policy_learns_the_right_action(env_id, observations):
    cfg, env, state, _ = train_probe(env_id)
    obs = jnp.array(observations)
    value, dist = values_and_policy(cfg, state.params, obs)
    best = env.optimal_action(obs)
    assert np.all(np.asarray(dist.probs)[np.arange(len(obs)), best] > 0.9)
    np.testing.assert_allclose(value, env.analytic_value(obs, cfg.gamma), atol=0.1)


@pytest.mark.parametrize(
    "env_id, observations",
    [("Probe4Continuous-v0", [[0.0]]), ("Probe5Continuous-v0", [[-1.0], [1.0]])],
)
def test_continuous_policy_learns_the_right_action(env_id, observations):
    cfg, env, state, _ = train_probe(env_id, total=32_768)
    obs = jnp.array(observations)
    value, dist = values_and_policy(cfg, state.params, obs)
    np.testing.assert_allclose(dist.mean(), env.optimal_action(obs), atol=0.1)
    np.testing.assert_allclose(value, env.analytic_value(obs, cfg.gamma), atol=0.1)


def test_truncated_episodes_bootstrap():
    """On ProbeTruncation the value is 1/(1−γ) only if truncation bootstraps."""
    cfg, env, state, _ = train_probe("ProbeTruncation-v0", gamma=0.5)
    value, _ = values_and_policy(cfg, state.params, jnp.zeros((1, 1)))
    assert float(value[0]) == pytest.approx(2.0, abs=0.1)
    wrong = env.truncation_as_terminal_values(0.5, 5)
    assert abs(float(value[0]) - float(wrong.td0)) > 0.25


def test_jit_vmap_no_recompile_and_reproducible():
    cfg = ppo.Config(
        env_id="CartPole-v1",
        total_timesteps=4 * 16 * 3,
        num_envs=4,
        num_steps=16,
        hidden_sizes=(16,),
    )
    train = jax.jit(jax.vmap(ppo.make_train(cfg)))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    _, m1 = train(keys)
    with jax.log_compiles():
        with jax.checking_leaks():
            pass
    cache_size = train._cache_size()
    _, m2 = train(keys)
    assert train._cache_size() == cache_size == 1
    jax.tree.map(np.testing.assert_array_equal, m1, m2)
    assert m1["policy_loss"].shape == (2, 3)
    # Two seeds differ.
    assert not np.array_equal(m1["entropy"][0], m1["entropy"][1])


def test_bad_config_raises_before_jit():
    with pytest.raises(
        ValueError, match=r"num_envs \* num_steps \(12\) must be divisible by num_minibatches \(5\)"
    ):
        ppo.Config(num_envs=3, num_steps=4, num_minibatches=5)
    with pytest.raises(ValueError, match=r"clip_eps = 1.5"):
        ppo.Config(clip_eps=1.5)
    with pytest.raises(ValueError, match=r"gamma = -0.1"):
        ppo.Config(gamma=-0.1)


def test_learning_rate_sweep_in_one_program():
    """Numeric fields are traced: one compiled program runs several learning rates."""
    cfg = ppo.Config(total_timesteps=4 * 16 * 2, num_envs=4, num_steps=16, hidden_sizes=(16,))
    agent = ppo.make_agent(cfg)
    configs = ppo.Config(
        **{
            **cfg.__dict__,
            "learning_rate": jnp.array([1e-3, 1e-2]),
            "gamma": jnp.array([0.99, 0.99]),
            "gae_lambda": jnp.array([0.95, 0.95]),
            "clip_eps": jnp.array([0.2, 0.2]),
            "value_clip_eps": jnp.array([0.2, 0.2]),
            "ent_coef": jnp.array([0.01, 0.01]),
            "vf_coef": jnp.array([0.5, 0.5]),
            "max_grad_norm": jnp.array([0.5, 0.5]),
        }
    )
    key = jax.random.PRNGKey(0)
    states = jax.vmap(agent.init, in_axes=(None, 0))(key, configs)
    _, metrics = jax.jit(jax.vmap(agent.update))(states, configs)
    np.testing.assert_allclose(metrics["learning_rate"], [1e-3, 1e-2])
