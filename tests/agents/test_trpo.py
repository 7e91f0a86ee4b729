"""TRPO: learns the probes, keeps the KL inside the trust region, never accepts a worse step."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import on_policy, trpo
from tests.agents.on_policy_checks import (
    assert_one_trace,
    assert_rewards_scaled_with_own_gamma,
    assert_sweep_equals_separate_runs,
)

PROBE = dict(
    num_envs=8,
    num_steps=32,
    hidden_sizes=(32, 32),
    gamma=0.9,
    vf_epochs=4,
    vf_minibatches=4,
    vf_learning_rate=3e-3,
    max_kl=0.05,
)


def train_probe(env_id, total=16_384, **overrides):
    cfg = trpo.Config(env_id=env_id, total_timesteps=total, **{**PROBE, **overrides})
    state, metrics = jax.jit(trpo.make_train(cfg))(jax.random.PRNGKey(0))
    env, _ = envs.make(env_id)
    return cfg, env, state, metrics


def assert_trust_region(metrics, max_kl):
    """KL after each update ≤ 1.5 δ; an accepted step never lowers the surrogate."""
    kl = np.asarray(metrics["kl"])
    accepted = np.asarray(metrics["accepted"]) > 0
    assert np.all(kl <= 1.5 * max_kl), kl.max()
    assert np.all(kl[~accepted] == 0.0)
    improvement = np.asarray(metrics["surrogate_new"]) - np.asarray(metrics["surrogate"])
    assert np.all(improvement[accepted] > 0)
    np.testing.assert_allclose(
        improvement[accepted], np.asarray(metrics["improvement"])[accepted], atol=1e-5
    )
    assert accepted.any()


def test_discrete_probe_learns_action_and_values_inside_the_trust_region():
    cfg, env, state, metrics = train_probe("Probe5-v0")
    network = trpo.make_network(cfg)
    obs = jnp.array([[-1.0], [1.0]])
    probs = np.asarray(network.distribution(state.params, obs).probs)
    assert np.all(probs[np.arange(2), env.optimal_action(obs)] > 0.9)
    value = network.value(state.params, obs)
    np.testing.assert_allclose(value, env.analytic_value(obs, cfg.gamma), atol=0.1)
    assert_trust_region(metrics, cfg.max_kl)


def test_continuous_probe_learns_the_right_action():
    cfg, env, state, metrics = train_probe("Probe5Continuous-v0", total=32_768)
    network = trpo.make_network(cfg)
    obs = jnp.array([[-1.0], [1.0]])
    dist = network.distribution(state.params, obs)
    np.testing.assert_allclose(dist.mean(), env.optimal_action(obs), atol=0.1)
    bias = dist.mean() - env.optimal_action(obs)
    own_value = 1.0 - jnp.sum(dist.variance() + bias**2, axis=-1)
    np.testing.assert_allclose(network.value(state.params, obs), own_value, atol=0.1)
    assert_trust_region(metrics, cfg.max_kl)


def test_truncated_episodes_bootstrap():
    """On ProbeTruncation the fitted value is 1/(1−γ) only if truncation bootstraps."""
    cfg, env, state, _ = train_probe("ProbeTruncation-v0", gamma=0.5)
    value = trpo.make_network(cfg).value(state.params, jnp.zeros((1, 1)))
    assert float(value[0]) == pytest.approx(2.0, abs=0.1)
    assert abs(float(value[0]) - float(env.truncation_as_terminal_values(0.5, 5).td0)) > 0.25


def test_cartpole_updates_stay_inside_the_trust_region():
    cfg = trpo.Config(
        env_id="CartPole-v1",
        total_timesteps=4 * 2 * 256,
        num_envs=2,
        num_steps=256,
        hidden_sizes=(32, 32),
        vf_epochs=2,
        vf_minibatches=4,
        max_kl=0.01,
    )
    _, metrics = jax.jit(trpo.make_train(cfg))(jax.random.PRNGKey(0))
    assert_trust_region(metrics, cfg.max_kl)
    assert np.all(np.asarray(metrics["cg_residual"]) >= 0)
    assert np.all(np.isfinite(np.asarray(metrics["value_loss"])))


def test_reported_kl_is_the_kl_between_old_and_new_policy():
    """policy_step's kl equals distrax's KL(π_old ‖ π_new) averaged over the batch."""
    cfg = trpo.Config(
        env_id="Pendulum-v1", num_envs=4, num_steps=64, hidden_sizes=(16,), max_kl=0.02
    )
    network = trpo.make_network(cfg)
    env, env_params, _ = on_policy.make_env(cfg.env_id, cfg.num_envs)
    obs, env_state = env.reset(jax.random.PRNGKey(0), env_params)
    params = network.init(jax.random.PRNGKey(1), obs)
    _, _, rollout = on_policy.collect_rollout(
        network.act, params, env, env_params, env_state, obs, jax.random.PRNGKey(2), 64
    )
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), rollout)
    batch = {
        "obs": flat.obs,
        "actions": flat.actions,
        "log_probs": flat.log_probs,
        "advantages": on_policy.standardize(flat.rewards),
    }
    new_policy, metrics = jax.jit(trpo.policy_step, static_argnums=1)(
        params.policy, network.actor, batch, cfg
    )
    old = network.actor.apply(params.policy, flat.obs)
    new = network.actor.apply(new_policy, flat.obs)
    kl = distrax.MultivariateNormalDiag(old.loc, old.scale_diag).kl_divergence(
        distrax.MultivariateNormalDiag(new.loc, new.scale_diag)
    )
    assert float(metrics["accepted"]) == 1.0
    np.testing.assert_allclose(metrics["kl"], kl.mean(), rtol=1e-4)
    assert 0 < float(metrics["kl"]) <= cfg.max_kl
    assert float(metrics["improvement"]) > 0


SMALL = dict(num_envs=4, num_steps=16, hidden_sizes=(16,), vf_epochs=2, vf_minibatches=2)


def test_jit_vmap_reproducible():
    cfg = trpo.Config(total_timesteps=4 * 16 * 3, **SMALL)
    train = jax.jit(jax.vmap(trpo.make_train(cfg)))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    _, m1 = train(keys)
    _, m2 = train(keys)
    jax.tree.map(np.testing.assert_array_equal, m1, m2)
    assert m1["kl"].shape == (2, 3)
    assert not np.array_equal(m1["entropy"][0], m1["entropy"][1])


def test_update_traces_once_across_hyperparameters():
    cfg = trpo.Config(total_timesteps=4 * 16 * 2, normalize_rewards=True, **SMALL)
    assert_one_trace(
        trpo, cfg, max_kl=0.02, damping=0.2, backtrack_ratio=0.5, vf_learning_rate=1e-2,
        gamma=0.9, gae_lambda=0.8,
    )  # fmt: skip


def test_gamma_sweep_with_reward_scaling_equals_separate_runs():
    cfg = trpo.Config(total_timesteps=4 * 16 * 3, normalize_rewards=True, **SMALL)
    assert_sweep_equals_separate_runs(
        trpo, cfg, "gamma", [0.9, 0.99], atol=1e-4, counts=("cg_iterations",)
    )
    assert_rewards_scaled_with_own_gamma(trpo, cfg)


def test_bad_config_raises_before_jit():
    with pytest.raises(
        ValueError, match=r"num_steps \(4\) must be divisible by vf_minibatches \(5\)"
    ):
        trpo.Config(num_envs=3, num_steps=4, vf_minibatches=5, total_timesteps=100)
    with pytest.raises(ValueError, match=r"max_kl = 0"):
        trpo.Config(max_kl=0.0)
    with pytest.raises(ValueError, match=r"backtrack_ratio = 1.0"):
        trpo.Config(backtrack_ratio=1.0)
