"""PPO: learns the probe environments, bootstraps truncation, compiles once, is reproducible."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import ppo
from tests.agents.on_policy_checks import (
    assert_one_trace,
    assert_rewards_scaled_with_own_gamma,
    assert_sweep_equals_separate_runs,
)

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


def test_state_dependent_std_learns_the_right_action_with_sigma_per_state():
    # At the probes' 3e-3 the σ head shrinks σ before the mean has moved; 1e-3 learns both.
    cfg, env, state, _ = train_probe(
        "Probe5Continuous-v0", total=32_768, state_dependent_std=True, log_std_init=-0.5,
        learning_rate=1e-3,
    )  # fmt: skip
    actor = state.params["params"]
    assert "log_std_head" in actor and "log_std" not in actor
    obs = jnp.array([[-1.0], [1.0]])
    init = ppo.make_network(cfg).init(jax.random.PRNGKey(1), obs)
    _, dist0 = values_and_policy(cfg, init, obs)
    np.testing.assert_allclose(dist0.stddev(), np.exp(-0.5), rtol=0.05)  # the head starts near 0
    _, dist = values_and_policy(cfg, state.params, obs)
    np.testing.assert_allclose(dist.mean(), env.optimal_action(obs), atol=0.1)
    sigma = np.asarray(dist.stddev())[:, 0]
    assert sigma[0] != sigma[1]  # one σ per state, not one vector for all


def test_truncated_episodes_bootstrap():
    """On ProbeTruncation the value is 1/(1−γ) only if truncation bootstraps."""
    cfg, env, state, _ = train_probe("ProbeTruncation-v0", gamma=0.5)
    value, _ = values_and_policy(cfg, state.params, jnp.zeros((1, 1)))
    assert float(value[0]) == pytest.approx(2.0, abs=0.1)
    wrong = env.truncation_as_terminal_values(0.5, 5)
    assert abs(float(value[0]) - float(wrong.td0)) > 0.25


SMALL = dict(env_id="CartPole-v1", num_envs=4, num_steps=16, hidden_sizes=(16,))


def test_jit_vmap_reproducible():
    cfg = ppo.Config(total_timesteps=4 * 16 * 3, **SMALL)
    train = jax.jit(jax.vmap(ppo.make_train(cfg)))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    _, m1 = train(keys)
    _, m2 = train(keys)
    jax.tree.map(np.testing.assert_array_equal, m1, m2)
    assert m1["policy_loss"].shape == (2, 3)
    # Two seeds differ.
    assert not np.array_equal(m1["entropy"][0], m1["entropy"][1])


def test_update_traces_once_across_hyperparameters():
    cfg = ppo.Config(total_timesteps=4 * 16 * 2, normalize_rewards=True, **SMALL)
    assert_one_trace(
        ppo, cfg, learning_rate=1e-2, gamma=0.9, gae_lambda=0.8, clip_eps=0.1,
        value_clip_eps=0.3, ent_coef=0.05, vf_coef=0.25, max_grad_norm=1.0,
    )  # fmt: skip


def test_bad_config_raises_before_jit():
    with pytest.raises(
        ValueError, match=r"num_steps \(4\) must be divisible by num_minibatches \(5\)"
    ):
        ppo.Config(num_envs=3, num_steps=4, num_minibatches=5)
    with pytest.raises(ValueError, match=r"clip_eps = 1.5"):
        ppo.Config(clip_eps=1.5)
    with pytest.raises(ValueError, match=r"gamma = -0.1"):
        ppo.Config(gamma=-0.1)


def test_gamma_sweep_with_reward_scaling_equals_separate_runs():
    """Each configuration scales its rewards with its own γ (once, every run used the first γ)."""
    cfg = ppo.Config(total_timesteps=4 * 16 * 3, normalize_rewards=True, **SMALL)
    assert_sweep_equals_separate_runs(ppo, cfg, "gamma", [0.9, 0.99])
    assert_rewards_scaled_with_own_gamma(ppo, cfg)
