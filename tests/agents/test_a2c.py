"""A2C: learns the probes, n-step advantages, PyTorch-style RMSprop, one compiled program."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import a2c, on_policy
from jaxrl.core.returns import gae
from tests.agents.on_policy_checks import (
    assert_one_trace,
    assert_rewards_scaled_with_own_gamma,
    assert_sweep_equals_separate_runs,
)

PROBE = dict(
    num_envs=8,
    num_steps=8,
    hidden_sizes=(32, 32),
    learning_rate=1e-3,
    gamma=0.9,
)


def train_probe(env_id, total=16_384, **overrides):
    cfg = a2c.Config(env_id=env_id, total_timesteps=total, **{**PROBE, **overrides})
    state, metrics = jax.jit(a2c.make_train(cfg))(jax.random.PRNGKey(0))
    env, _ = envs.make(env_id)
    return cfg, env, state, metrics


@pytest.mark.parametrize(
    "env_id, observations, overrides",
    [
        ("Probe3-v0", [[0.0], [1.0]], {}),
        ("Probe5-v0", [[-1.0], [1.0]], {"advantage": "gae", "gae_lambda": 0.95}),
        ("Probe5-v0", [[-1.0], [1.0]], {"shared_torso": True, "optimizer": "adam"}),
    ],
)
def test_learns_probe_values_and_actions(env_id, observations, overrides):
    cfg, env, state, _ = train_probe(env_id, **overrides)
    obs = jnp.array(observations)
    dist, value = a2c.make_network(cfg).apply(state.params, obs)
    np.testing.assert_allclose(value, env.analytic_value(obs, cfg.gamma), atol=0.1)
    if env_id == "Probe5-v0":
        probs = np.asarray(dist.probs)
        assert np.all(probs[np.arange(len(obs)), env.optimal_action(obs)] > 0.9)


def test_continuous_policy_learns_the_right_action():
    cfg, env, state, _ = train_probe("Probe5Continuous-v0", total=32_768, learning_rate=3e-3)
    obs = jnp.array([[-1.0], [1.0]])
    dist, value = a2c.make_network(cfg).apply(state.params, obs)
    np.testing.assert_allclose(dist.mean(), env.optimal_action(obs), atol=0.1)
    np.testing.assert_allclose(value, env.analytic_value(obs, cfg.gamma), atol=0.1)
    # Sharper: the value of the learned Gaussian policy, E[1 − (a − a*)²] = 1 − σ² − (μ − a*)².
    bias = dist.mean() - env.optimal_action(obs)
    own_value = 1.0 - jnp.sum(dist.variance() + bias**2, axis=-1)
    np.testing.assert_allclose(value, own_value, atol=0.05)


def test_truncated_episodes_bootstrap():
    cfg, env, state, _ = train_probe("ProbeTruncation-v0", gamma=0.5)
    _, value = a2c.make_network(cfg).apply(state.params, jnp.zeros((1, 1)))
    assert float(value[0]) == pytest.approx(2.0, abs=0.1)
    wrong = env.truncation_as_terminal_values(0.5, 5)
    assert abs(float(value[0]) - float(wrong.td0)) > 0.25


def _random_rollout(key, T=6, B=3):
    k = jax.random.split(key, 5)
    zeros = jnp.zeros((T, B))
    terminated = jax.random.bernoulli(k[0], 0.15, (T, B))
    truncated = jax.random.bernoulli(k[1], 0.15, (T, B)) & ~terminated
    values = jax.random.normal(k[2], (T, B))
    # V(s'ₜ) is V(sₜ₊₁) inside an episode; a fresh value where the episode or rollout ends.
    fresh = jax.random.normal(k[4], (T, B))
    shifted = jnp.concatenate([values[1:], fresh[-1:]])
    next_values = jnp.where(terminated | truncated, fresh, shifted)
    return on_policy.Rollout(
        obs=zeros[..., None],
        actions=zeros,
        log_probs=zeros,
        values=values,
        rewards=jax.random.normal(k[3], (T, B)),
        terminated=terminated,
        truncated=truncated,
        next_obs=zeros[..., None],
        returned=terminated | truncated,
        episode_return=zeros,
        episode_length=zeros,
    ), next_values


@pytest.mark.parametrize("seed", range(3))
def test_advantage_fns_agree(seed):
    """n-step with n = T is the Monte Carlo return; both equal GAE with λ = 1; n = 1 is TD(0)."""
    rollout, next_values = _random_rollout(jax.random.PRNGKey(seed))
    cfg = a2c.Config(num_steps=6, num_envs=3, total_timesteps=18)
    adv_n, ret_n = a2c.make_advantage_fn(cfg)(rollout, next_values, 0.9, None)
    adv_mc, ret_mc = on_policy.monte_carlo_advantages(rollout, next_values, 0.9)
    adv_gae, ret_gae = gae(
        rollout.rewards,
        rollout.values,
        next_values,
        rollout.terminated,
        rollout.done,
        0.9,
        1.0,
    )
    np.testing.assert_allclose(ret_n, ret_mc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv_n, adv_gae, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv_mc, adv_gae, rtol=1e-5, atol=1e-5)
    one = functools.partial(on_policy.n_step_advantages, n=1)
    adv_1, _ = one(rollout, next_values, 0.9)
    td = rollout.rewards + 0.9 * (1 - rollout.terminated) * next_values - rollout.values
    np.testing.assert_allclose(adv_1, td, rtol=1e-5, atol=1e-5)


def test_rmsprop_is_pytorch_style():
    """v ← α v + (1 − α) g², step = g / (√v + ε), v₀ = 0, after global-norm clipping."""
    cfg = a2c.Config(max_grad_norm=10.0, rmsprop_decay=0.9, optimizer_eps=0.1)
    tx = a2c.make_transform(cfg)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    v = np.zeros(3)
    for g in ([1.0, -2.0, 0.5], [0.3, 0.0, -1.0]):
        g = np.asarray(g)
        updates, state = tx.update({"w": jnp.asarray(g, jnp.float32)}, state, params)
        v = 0.9 * v + 0.1 * g**2
        np.testing.assert_allclose(updates["w"], g / (np.sqrt(v) + 0.1), rtol=1e-5)


SMALL = dict(num_envs=4, num_steps=5, hidden_sizes=(16,))


def test_jit_vmap_reproducible():
    cfg = a2c.Config(total_timesteps=4 * 5 * 3, **SMALL)
    train = jax.jit(jax.vmap(a2c.make_train(cfg)))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    _, m1 = train(keys)
    _, m2 = train(keys)
    jax.tree.map(np.testing.assert_array_equal, m1, m2)
    assert m1["policy_loss"].shape == (2, 3)
    assert not np.array_equal(m1["entropy"][0], m1["entropy"][1])


def test_update_traces_once_across_hyperparameters():
    cfg = a2c.Config(total_timesteps=4 * 5 * 2, normalize_rewards=True, anneal_lr=True, **SMALL)
    assert_one_trace(
        a2c, cfg, learning_rate=1e-2, gamma=0.9, gae_lambda=0.8, ent_coef=0.05, vf_coef=0.25,
        max_grad_norm=1.0, rmsprop_decay=0.9, optimizer_eps=1e-3,
    )  # fmt: skip


def test_gamma_sweep_with_reward_scaling_equals_separate_runs():
    cfg = a2c.Config(total_timesteps=4 * 5 * 3, normalize_rewards=True, **SMALL)
    assert_sweep_equals_separate_runs(a2c, cfg, "gamma", [0.9, 0.99])
    assert_rewards_scaled_with_own_gamma(a2c, cfg)


def test_bad_config_raises_before_jit():
    with pytest.raises(ValueError, match=r"advantage = 'td'"):
        a2c.Config(advantage="td")
    with pytest.raises(ValueError, match=r"optimizer = 'sgd'"):
        a2c.Config(optimizer="sgd")
    with pytest.raises(ValueError, match=r"n_step = -1"):
        a2c.Config(n_step=-1)
    with pytest.raises(ValueError, match=r"rmsprop_decay = 1.5"):
        a2c.Config(rmsprop_decay=1.5)


def test_axis_name_averages_gradients_and_reward_statistics():
    """Two halves of the environments on one mapped axis (vmap): one shared step, the step of
    the whole batch on one device (gradients, reward and advantage statistics reduced)."""
    cfg = a2c.Config(
        total_timesteps=4 * 5 * 2, normalize_rewards=True, normalize_advantages=True, **SMALL
    )
    half = a2c.make_agent(cfg, axis_name="devices", num_shards=2)
    whole = a2c.make_agent(cfg)

    def pair(fn, in_axes):
        return jax.jit(jax.vmap(fn, in_axes=in_axes, axis_name="devices", axis_size=2))

    key = jax.random.PRNGKey(0)
    states = pair(half.init, (None, None))(key, cfg)
    assert states.obs.shape[:2] == (2, 2)  # each copy holds 2 of the 4 environments
    new, metrics = pair(half.update, (0, None))(states, cfg)
    for leaf in jax.tree.leaves((new.params, new.reward_scaler.stats, metrics)):
        np.testing.assert_array_equal(leaf[0], leaf[1])
    want, want_metrics = jax.jit(whole.update)(jax.jit(whole.init)(key, cfg), cfg)
    # the same environment steps; XLA may round the two programs' physics differently
    np.testing.assert_allclose(new.obs.reshape(want.obs.shape), want.obs, rtol=1e-6, atol=1e-7)
    for got, ref in zip(jax.tree.leaves(new.params), jax.tree.leaves(want.params), strict=True):
        np.testing.assert_allclose(got[0], ref, rtol=1e-5, atol=1e-6)
    for name, ref in want_metrics.items():
        np.testing.assert_allclose(metrics[name][0], ref, rtol=1e-5, atol=1e-6, err_msg=name)
    # The shared statistics count every environment's returns, as on one device.
    np.testing.assert_allclose(
        new.reward_scaler.stats.count[0], want.reward_scaler.stats.count, rtol=1e-6
    )
    assert float(want.reward_scaler.stats.count) > 4 * 5
