"""SAC: continuous and discrete probes (two seeds under vmap), temperature, truncation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs, nets
from jaxrl.agents import sac

# Small budgets: a few thousand steps with tiny networks.
PROBE = dict(
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
    alpha_lr=3e-3,
)


def train(env_id, seeds=1, **overrides):
    cfg = sac.Config(env_id=env_id, **{**PROBE, **overrides})
    traces = []
    train_fn = sac.make_train(cfg)

    def train_one(key):
        traces.append(1)  # runs only while tracing
        return train_fn(key)

    run = jax.jit(jax.vmap(train_one))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state, metrics = run(keys)
    env, _ = envs.make(env_id)
    return cfg, env, state, metrics, run, keys, traces


def seed_learner(state, seed):
    return jax.tree.map(lambda x: x[seed], state.learner)


def test_continuous_probe5_two_seeds_temperature_compiles_once():
    """Observation × action: the policy's mode is ½·obs and Q = 1 there, for both seeds; α
    falls while the entropy is above H̄ = −1 and the entropy moves toward H̄."""
    cfg, env, state, metrics, run, keys, traces = train("Probe5Continuous-v0", seeds=2)
    actor, critic = sac.make_networks(cfg)
    obs = jnp.array([[-1.0], [1.0]])
    for seed in range(2):
        learner = seed_learner(state, seed)
        mode = nets.squashed_mode(actor.apply(learner.actor_params, obs))
        np.testing.assert_allclose(mode, env.optimal_action(obs), atol=0.1)
        q = critic.apply(learner.critic_params, obs, mode)
        np.testing.assert_allclose(q.minimum(), env.analytic_q(obs, mode, cfg.gamma), atol=0.1)
    h_bar = -1.0
    alpha, entropy = np.asarray(metrics["alpha"]), np.asarray(metrics["entropy"])
    assert np.all(entropy[:, 0] > h_bar)
    assert np.all(np.diff(alpha, axis=1) < 0)  # entropy above target: α keeps falling
    assert np.all(np.abs(entropy[:, -1] - h_bar) < np.abs(entropy[:, 0] - h_bar) - 0.3)
    for name in ("episode_return", "td_loss", "q_mean", "actor_loss", "alpha", "entropy"):
        assert metrics[name].shape == (2, 10), name
    _, again = run(keys)
    assert len(traces) == 1
    jax.tree.map(np.testing.assert_array_equal, metrics, again)


def test_discrete_probe5_soft_greedy_policy_and_target_entropy():
    """Discrete SAC: both critics learn Q exactly, the entropy settles at H̄ = 0.7·log 2 and
    the policy is the soft-greedy one, π ∝ exp(min Q / α)."""
    cfg, env, state, metrics, *_ = train("Probe5-v0")
    actor, critic = sac.make_networks(cfg)
    learner = seed_learner(state, 0)
    obs = jnp.array([[-1.0], [1.0]])
    q = jax.vmap(critic.apply, in_axes=(0, None))(learner.critic_params, obs)  # [2, 2, A]
    for a in range(2):
        expected = env.analytic_q(obs, jnp.full((2,), a), cfg.gamma)
        np.testing.assert_allclose(q[:, :, a], np.stack([expected, expected]), atol=0.1)
    np.testing.assert_allclose(metrics["entropy"][0, -1], 0.7 * np.log(2), atol=0.05)
    probs = actor.apply(learner.actor_params, obs).probs
    alpha = jnp.exp(learner.log_alpha)
    np.testing.assert_allclose(probs, jax.nn.softmax(q.min(0) / alpha), atol=0.05)
    best = env.optimal_action(obs)
    assert np.all(np.asarray(probs)[np.arange(2), best] > 0.6)


def test_discrete_truncated_episodes_bootstrap():
    """One action (no entropy bonus): Q = 1/(1−γ) = 2 only if the time limit bootstraps."""
    # More gradient steps: the value is built up through bootstrapping alone.
    cfg, env, state, *_ = train("ProbeTruncation-v0", gamma=0.5, gradient_steps=4)
    _, critic = sac.make_networks(cfg)
    learner = seed_learner(state, 0)
    q = jax.vmap(critic.apply, in_axes=(0, None))(learner.critic_params, jnp.zeros((1, 1)))
    np.testing.assert_allclose(q[:, 0, 0], [2.0, 2.0], atol=0.1)
    assert abs(float(q[0, 0, 0]) - float(env.truncation_as_terminal_values(0.5, 5).td0)) > 0.25


def test_target_entropy_and_bad_config():
    cfg = sac.Config(target_entropy_scale=0.5, target_entropy_ratio=0.8)
    cont = envs.ActionInfo(False, None, 3, (3,), None, None)
    disc = envs.ActionInfo(True, 4, None, (), None, None)
    assert sac.target_entropy(cfg, cont) == pytest.approx(-1.5)
    assert sac.target_entropy(cfg, disc) == pytest.approx(0.8 * np.log(4))
    with pytest.raises(ValueError, match=r"init_alpha = 0"):
        sac.Config(init_alpha=0)
    with pytest.raises(ValueError, match="cnn"):
        sac.make_agent(sac.Config(env_id="Pendulum-v1", torso="cnn"))
