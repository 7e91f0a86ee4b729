"""REINFORCE: unbiased gradient on a bandit, learns the probes, bootstraps truncation only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxrl import envs
from jaxrl.agents import on_policy, reinforce
from tests.agents.on_policy_checks import assert_one_trace, assert_sweep_equals_separate_runs

PROBE = dict(
    num_envs=8,
    num_steps=8,
    hidden_sizes=(32, 32),
    learning_rate=3e-3,
    gamma=0.9,
)


def train_probe(env_id, total=16_384, **overrides):
    cfg = reinforce.Config(env_id=env_id, total_timesteps=total, **{**PROBE, **overrides})
    state, metrics = jax.jit(reinforce.make_train(cfg))(jax.random.PRNGKey(0))
    env, _ = envs.make(env_id)
    return cfg, env, state, metrics


@pytest.mark.parametrize(
    "env_id, observations, overrides",
    [
        ("Probe5-v0", [[-1.0], [1.0]], {}),
        ("Probe4-v0", [[0.0]], {"baseline": False}),
    ],
)
def test_discrete_policy_learns_the_right_action(env_id, observations, overrides):
    cfg, env, state, _ = train_probe(env_id, **overrides)
    network = reinforce.make_network(cfg)
    obs = jnp.array(observations)
    probs = np.asarray(network.distribution(state.params, obs).probs)
    assert np.all(probs[np.arange(len(obs)), env.optimal_action(obs)] > 0.9)
    if cfg.baseline:
        value = network.value(state.params, obs)
        np.testing.assert_allclose(value, env.analytic_value(obs, cfg.gamma), atol=0.1)


def test_continuous_policy_learns_the_right_action():
    cfg, env, state, _ = train_probe("Probe5Continuous-v0", total=32_768)
    network = reinforce.make_network(cfg)
    obs = jnp.array([[-1.0], [1.0]])
    mean = network.distribution(state.params, obs).mean()
    np.testing.assert_allclose(mean, env.optimal_action(obs), atol=0.1)


def test_baseline_learns_discounted_values():
    """Probe 3: V(0) = γ, V(1) = 1 from Monte Carlo returns."""
    cfg, env, state, _ = train_probe("Probe3-v0")
    obs = jnp.array([[0.0], [1.0]])
    value = reinforce.make_network(cfg).value(state.params, obs)
    np.testing.assert_allclose(value, env.analytic_value(obs, cfg.gamma), atol=0.1)


def test_truncated_episodes_bootstrap_from_the_baseline():
    """On ProbeTruncation the Monte Carlo return reaches 1/(1−γ) only if truncation bootstraps."""
    cfg, env, state, _ = train_probe("ProbeTruncation-v0", gamma=0.5, whole_episodes_only=True)
    value = reinforce.make_network(cfg).value(state.params, jnp.zeros((1, 1)))
    assert float(value[0]) == pytest.approx(2.0, abs=0.1)
    wrong = env.truncation_as_terminal_values(0.5, 5)
    assert abs(float(value[0]) - float(wrong.monte_carlo)) > 0.25


def _bandit_batch(cfg, params, network, key):
    env, env_params, _ = on_policy.make_env(cfg.env_id, cfg.num_envs)
    reset_key, rollout_key = jax.random.split(key)
    obs, env_state = env.reset(reset_key, env_params)
    _, _, rollout = on_policy.collect_rollout(
        network.act, params, env, env_params, env_state, obs, rollout_key, cfg.num_steps
    )
    next_values = network.value(params, rollout.next_obs)
    advantages, returns = on_policy.monte_carlo_advantages(rollout, next_values, cfg.gamma)
    batch = {
        "obs": rollout.obs,
        "actions": rollout.actions,
        "advantages": advantages,
        "returns": returns,
        "mask": jnp.ones_like(returns),
    }
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)


@pytest.mark.parametrize("baseline", [False, True])
def test_gradient_matches_the_analytic_policy_gradient(baseline):
    """Two-armed bandit (Probe 4: r = +1 for arm 1, −1 for arm 0, one step).

    J(θ) = Σₐ π_θ(a) r(a); the REINFORCE loss gradient must be −∇J within Monte
    Carlo error, with or without a (deliberately wrong) baseline.
    """
    cfg = reinforce.Config(
        env_id="Probe4-v0",
        total_timesteps=4096,
        num_envs=512,
        num_steps=8,
        hidden_sizes=(8,),
        baseline=baseline,
        normalize_advantages=False,
        ent_coef=0.0,
    )
    network = reinforce.make_network(cfg)
    params = network.init(jax.random.PRNGKey(3), jnp.zeros((1, 1)))
    # A policy away from uniform, so the gradient is not a special case.
    policy = jax.tree.map(lambda x: x * 20.0, params.policy)
    params = params._replace(policy=policy)
    batch = _bandit_batch(cfg, params, network, jax.random.PRNGKey(4))
    rewards = jnp.array([-1.0, 1.0])

    def objective(policy_params):
        probs = network.actor.apply(policy_params, jnp.zeros((1,))).probs
        return jnp.sum(probs * rewards)

    analytic = ravel_pytree(jax.grad(objective)(params.policy))[0]

    def sample_grad(sample):
        one = jax.tree.map(lambda x: x[None], sample)
        grads, _ = jax.grad(reinforce.reinforce_loss, has_aux=True)(params, network, one, cfg)
        return -ravel_pytree(grads.policy)[0]

    per_sample = jax.jit(jax.vmap(sample_grad))(batch)  # [N, P]
    loss_grad = jax.grad(reinforce.reinforce_loss, has_aux=True)
    full, _ = jax.jit(lambda p, b: loss_grad(p, network, b, cfg))(params, batch)  # compiled
    estimate = -ravel_pytree(full.policy)[0]
    np.testing.assert_allclose(estimate, per_sample.mean(0), rtol=1e-4, atol=1e-6)
    stderr = per_sample.std(0) / np.sqrt(per_sample.shape[0])
    z = (estimate - analytic) / (stderr + 1e-8)
    assert np.max(np.abs(z)) < 4.5, z
    assert np.linalg.norm(analytic) > 1e-2
    cosine = estimate @ analytic / (np.linalg.norm(estimate) * np.linalg.norm(analytic))
    assert cosine > 0.95
    probs = network.distribution(params, jnp.zeros((1, 1))).probs
    assert 0.1 < float(probs[0, 1]) < 0.9


def test_complete_episode_mask_and_monte_carlo_returns():
    """Steps after an env's last episode end are masked; returns bootstrap at cuts only."""
    done = np.array([[0, 0], [1, 0], [0, 1], [0, 0]], bool)  # [T=4, B=2]
    terminated = np.array([[0, 0], [1, 0], [0, 0], [0, 0]], bool)
    truncated = done & ~terminated
    rewards = np.ones((4, 2), np.float32)
    next_values = np.full((4, 2), 10.0, np.float32)
    zeros = np.zeros((4, 2), np.float32)
    rollout = on_policy.Rollout(
        obs=zeros[..., None],
        actions=zeros,
        log_probs=zeros,
        values=zeros + 0.5,
        rewards=rewards,
        terminated=terminated,
        truncated=truncated,
        next_obs=zeros[..., None],
        returned=done,
        episode_return=zeros,
        episode_length=zeros,
    )
    mask = on_policy.complete_episode_mask(rollout)
    np.testing.assert_array_equal(mask, [[1, 1], [1, 1], [0, 1], [0, 0]])
    adv, ret = on_policy.monte_carlo_advantages(rollout, next_values, 0.5)
    # Env 0: terminated at t=1 (no bootstrap); t=2, 3 run into the rollout's end (bootstrap).
    # Env 1: truncated at t=2 (bootstrap from 10); t=3 is cut by the rollout's end.
    expected = np.array(
        [[1.5, 1 + 0.5 * (1 + 0.5 * 6)], [1, 1 + 0.5 * 6], [1 + 0.5 * 6, 6], [6, 6]]
    )
    np.testing.assert_allclose(ret, expected, rtol=1e-6)
    np.testing.assert_allclose(adv, expected - 0.5, rtol=1e-6)


SMALL = dict(num_envs=4, num_steps=16, hidden_sizes=(16,))


def test_jit_vmap_reproducible():
    cfg = reinforce.Config(total_timesteps=4 * 16 * 3, **SMALL)
    train = jax.jit(jax.vmap(reinforce.make_train(cfg)))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    _, m1 = train(keys)
    _, m2 = train(keys)
    jax.tree.map(np.testing.assert_array_equal, m1, m2)
    assert m1["policy_loss"].shape == (2, 3)
    assert not np.array_equal(m1["entropy"][0], m1["entropy"][1])
    # The vmapped run equals the single-seed run of the same key.
    _, single = jax.jit(reinforce.make_train(cfg))(keys[1])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[1], b, rtol=1e-5, atol=1e-6), m1, single)


def test_update_traces_once_across_hyperparameters():
    cfg = reinforce.Config(total_timesteps=4 * 16 * 2, anneal_lr=True, **SMALL)
    assert_one_trace(
        reinforce, cfg, learning_rate=1e-2, gamma=0.9, ent_coef=0.05, vf_coef=0.25,
        max_grad_norm=1.0,
    )  # fmt: skip


def test_learning_rate_sweep_equals_separate_runs():
    cfg = reinforce.Config(total_timesteps=4 * 16 * 3, **SMALL)
    assert_sweep_equals_separate_runs(reinforce, cfg, "learning_rate", [1e-3, 1e-2])


def test_bad_config_raises_before_jit():
    with pytest.raises(ValueError, match=r"total_timesteps \(10\) must be at least"):
        reinforce.Config(total_timesteps=10)
    with pytest.raises(ValueError, match=r"gamma = 1.5"):
        reinforce.Config(gamma=1.5)
    with pytest.raises(ValueError, match=r"activation = 'sigmoid'"):
        reinforce.Config(activation="sigmoid")


def test_masked_standardize_uses_only_the_kept_steps():
    x = np.array([[1.0, 5.0], [3.0, 100.0], [2.0, -50.0]], np.float32)
    mask = np.array([[1, 1], [1, 0], [1, 0]], np.float32)
    out = np.asarray(on_policy.standardize(jnp.asarray(x), jnp.asarray(mask)))
    kept = x[mask > 0]
    np.testing.assert_allclose(out[mask > 0], (kept - kept.mean()) / kept.std(), rtol=1e-5)
    np.testing.assert_allclose(on_policy.standardize(jnp.asarray(kept)), out[mask > 0], rtol=1e-5)
