"""Tests for jaxrl.llm.grpo (and the shared roles): on-policy identity, compile once, learning."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.sequence import aggregation_weights, group_advantages
from jaxrl.llm.generate import sequence_log_probs
from jaxrl.llm.grpo import (
    GRPOConfig,
    compute_group_advantages,
    grpo_preset,
    grpo_step,
    grpo_step_jit,
    grpo_step_timed,
    make_grpo_roles,
    train_grpo,
)
from jaxrl.llm.rl_loop import LoadedModel, load_stage, resolve_task
from jaxrl.llm.roles import actor_loss, make_rl_optimizer
from jaxrl.llm.tasks import TOKENIZER, AdditionTask
from jaxrl.llm.transformer import ModelConfig, init_params, save_model

MICRO = ModelConfig(
    vocab_size=TOKENIZER.vocab_size, max_len=12, d_model=16, num_heads=2, num_layers=1, d_ff=32
)
SEVEN = TOKENIZER.encode("7")[0]


@dataclasses.dataclass(frozen=True)
class SevensTask(AdditionTask):
    """Addition prompts; the score is the share of completion tokens that are a 7."""

    def score(self, prompts, completion_tokens, completion_mask):
        real = jnp.asarray(completion_mask) > 0
        sevens = jnp.sum((jnp.asarray(completion_tokens) == SEVEN) & real, axis=1)
        return (sevens / jnp.maximum(jnp.sum(real, axis=1), 1)).astype(jnp.float32)


TASK = AdditionTask(num_digits=1)


@pytest.fixture(scope="module")
def micro_params():
    return init_params(MICRO, jax.random.PRNGKey(0))


def _prompts(task, n, seed=0):
    return jax.tree_util.tree_map(jnp.asarray, task.prompts("train", n, seed=seed))


def _config(**changes):
    base = dict(
        num_prompts=4, group_size=4, kl_coef=0.0, eval_prompts=8, num_train_prompts=32,
        num_epochs=2, num_minibatches=2, learning_rate=3e-3, warmup_steps=0,
    )  # fmt: skip
    return GRPOConfig(**{**base, **changes})


def _rollout(roles, prompts, key, scores=None):
    actor, reference, reward = roles
    batch = actor.generate_sequences(prompts, key)
    batch = reference.compute_log_prob(batch)
    batch = reward.compute_reward(batch)
    if scores is not None:  # replace the (mostly zero) task score by varied rewards
        batch = batch._replace(scores=scores)
    return compute_group_advantages(batch, actor)


@pytest.mark.parametrize(
    "aggregation", ["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"]
)
def test_on_policy_identity(micro_params, aggregation):
    """One epoch from π_old: ratio − 1 = 0, loss = −Σ w·A, and ∇L = −Σ w·A·∇log π."""
    cfg = _config(aggregation=aggregation, clip_eps_high=0.28)
    roles = make_grpo_roles(cfg, LoadedModel(micro_params, MICRO, None), TASK)
    scores = jax.random.uniform(jax.random.PRNGKey(3), (16,))
    batch = _rollout(roles, _prompts(TASK, 4), jax.random.PRNGKey(1), scores)
    assert float(jnp.max(jnp.abs(batch.advantages))) > 0.1
    loss_and_grad = jax.value_and_grad(actor_loss, has_aux=True)
    (loss, metrics), g_loss = loss_and_grad(micro_params, batch, roles.actor)
    w = aggregation_weights(batch.mask, aggregation)
    np.testing.assert_allclose(loss, -jnp.sum(w * batch.advantages), rtol=1e-4, atol=1e-6)
    assert float(metrics["approx_kl"]) < 1e-8
    assert float(metrics["clip_fraction_low"]) == float(metrics["clip_fraction_high"]) == 0.0

    def surrogate(params):
        p = batch.prompts
        lp = sequence_log_probs(params, MICRO, p.tokens, p.mask, batch.tokens, batch.mask)
        return -jnp.sum(w * batch.advantages * lp)

    g_ref = jax.grad(surrogate)(micro_params)
    leaves = zip(jax.tree_util.tree_leaves(g_loss), jax.tree_util.tree_leaves(g_ref), strict=True)
    for a, b in leaves:
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def test_group_advantages_in_batch_and_kl_term(micro_params):
    cfg = _config(advantage="rloo", kl_coef=0.5)
    roles = make_grpo_roles(cfg, LoadedModel(micro_params, MICRO, None), TASK)
    scores = jnp.array([1.0, 0, 0, 1, 2, 2, 2, 2, 0, 1, 2, 3, 5, 5, 0, 0])
    batch = _rollout(roles, _prompts(TASK, 4), jax.random.PRNGKey(2), scores)
    expected = group_advantages(scores.reshape(4, 4), "rloo").reshape(16, 1)
    np.testing.assert_allclose(
        batch.advantages, jnp.where(batch.mask > 0, expected, 0.0), rtol=1e-6
    )
    # the reference is the initial policy: the k3 KL term and its gradient are zero there
    _, metrics = actor_loss(micro_params, batch, roles.actor)
    assert abs(float(metrics["kl_loss"])) < 1e-6
    # a different policy gets a positive KL term, weighted by β in the loss
    other = init_params(MICRO, jax.random.PRNGKey(9))
    loss_b, m_b = actor_loss(other, batch, roles.actor)
    loss_0, _ = actor_loss(other, batch, roles.actor.replace(kl_in_loss=False))
    assert float(m_b["kl_loss"]) > 0
    np.testing.assert_allclose(loss_b - loss_0, 0.5 * m_b["kl_loss"], rtol=1e-4)


def test_grpo_learns_a_probe_reward_compiling_once(micro_params):
    """Reward = share of 7s in the completion: from ≈ 1/49 at init to a clear majority."""
    task = SevensTask(num_digits=1)
    roles = make_grpo_roles(_config(), LoadedModel(micro_params, MICRO, None), task)
    data = _prompts(task, 64)
    key = jax.random.PRNGKey(0)
    before = grpo_step_jit._cache_size()
    rewards = []
    for i in range(25):
        key, k1, k2 = jax.random.split(key, 3)
        idx = jax.random.randint(k1, (4,), 0, 64)
        roles, m = grpo_step_jit(roles, jax.tree_util.tree_map(lambda x: x[idx], data), k2)
        rewards.append(float(m["reward_mean"]))
        assert grpo_step_jit._cache_size() == before + 1, f"recompiled at step {i}"
    assert np.mean(rewards[:3]) < 0.15
    assert np.mean(rewards[-3:]) > 0.5, rewards
    for name in (
        "reward_mean", "reward_std", "true_score", "kl_ref", "entropy", "clip_fraction_low",
        "clip_fraction_high", "approx_kl", "completion_length", "zero_variance_groups",
    ):  # fmt: skip
        assert np.isfinite(m[name]), name
    # the reference never moves
    leaves = zip(
        jax.tree_util.tree_leaves(roles.reference.params),
        jax.tree_util.tree_leaves(micro_params),
        strict=True,
    )
    for a, b in leaves:
        np.testing.assert_array_equal(a, b)
    # the stages jitted one by one compute the same step
    prompts = jax.tree_util.tree_map(lambda x: x[:4], data)
    roles1, metrics = grpo_step_jit(roles, prompts, jax.random.PRNGKey(1))
    timed_roles, timed = grpo_step_timed(roles, prompts, jax.random.PRNGKey(1))
    for k, v in metrics.items():
        np.testing.assert_allclose(timed[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
    assert {"time_generate_sequences", "time_update_actor"} <= set(timed)
    leaves = zip(
        jax.tree_util.tree_leaves(timed_roles.actor.state.params),
        jax.tree_util.tree_leaves(roles1.actor.state.params),
        strict=True,
    )
    for a, b in leaves:
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_config_validation_and_presets():
    with pytest.raises(ValueError, match="group_size"):
        GRPOConfig(group_size=1)
    GRPOConfig(group_size=1, advantage="dr_grpo", num_prompts=2)
    with pytest.raises(ValueError, match="aggregation"):
        GRPOConfig(aggregation="sum")
    with pytest.raises(ValueError, match="num_minibatches"):
        GRPOConfig(num_prompts=3, group_size=3, num_minibatches=2)
    with pytest.raises(ValueError, match="clip_eps_low"):
        GRPOConfig(clip_eps_low=1.5)
    dapo = grpo_preset("dapo", num_steps=3)
    assert (dapo.aggregation, dapo.clip_eps_high, dapo.kl_coef, dapo.num_steps) == (
        "token_mean",
        0.28,
        0.0,
        3,
    )
    assert grpo_preset("dr_grpo").advantage == "dr_grpo"
    with pytest.raises(ValueError, match="preset"):
        grpo_preset("ppo")


def test_train_grpo_from_a_saved_run_directory(tmp_path, micro_params):
    model_dir = tmp_path / "model"
    save_model(str(model_dir), micro_params, MICRO)
    (tmp_path / "config.json").write_text(
        json.dumps({"task": "addition", "task_options": {"num_digits": 1}})
    )
    loaded = load_stage(str(tmp_path))
    assert loaded.task == AdditionTask(num_digits=1) and loaded.model_config == MICRO
    # the recorded task keeps its options when the Config names it without any
    recorded = loaded.task
    assert resolve_task(GRPOConfig(task="addition"), None, recorded, "sorting") == recorded
    given = GRPOConfig(task="addition", task_options={"num_digits": 3})
    assert resolve_task(given, None, recorded, "sorting") == AdditionTask(num_digits=3)
    assert resolve_task(GRPOConfig(), None, None, "sorting").name == "sorting"
    cfg = _config(num_steps=2, eval_every=1)
    calls = []
    result = train_grpo(
        cfg, jax.random.PRNGKey(0), init_from=str(tmp_path), task=SevensTask(num_digits=1),
        time_stages=True, progress_callback=lambda step, numbers: calls.append(step),
    )  # fmt: skip
    assert calls == [1, 2]
    assert result.metrics["reward_mean"].shape == (2,)
    assert result.metrics["time_generate_sequences"].shape == (2,)
    assert result.evals["step"].tolist() == [0, 1, 2]
    assert {"accuracy", "score", "kl_ref", "before_accuracy"} <= set(result.summary)
    assert abs(result.summary["before_kl_ref"]) < 1e-4  # the policy starts as the reference
    with pytest.raises(ValueError, match="model_config.json"):
        train_grpo(cfg, jax.random.PRNGKey(0), init_from=str(tmp_path / "nowhere"))
    assert grpo_step.__doc__ and train_grpo.__doc__


def test_rl_optimizer_warms_up_linearly():
    """Adam's first update is ±η(0) per parameter; η(n) = lr·min(1, (n + 1)/W)."""
    cfg = _config(warmup_steps=2, num_epochs=2, num_minibatches=1, learning_rate=0.1)
    opt = make_rl_optimizer(cfg, cfg.learning_rate)  # W = 2 steps × 2 epochs = 4 updates
    params = {"w": jnp.zeros(3)}
    state = opt.init(params)
    sizes = []
    for _ in range(6):
        updates, state = opt.update({"w": jnp.array([0.1, -0.2, 0.3])}, state, params)
        sizes.append(float(jnp.max(jnp.abs(updates["w"]))))
    # a constant gradient keeps m̂/√v̂ = ±1: the update size is the scheduled rate
    np.testing.assert_allclose(sizes, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rtol=1e-4)
