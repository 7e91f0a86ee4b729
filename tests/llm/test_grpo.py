"""Tests for jaxrl.llm.grpo (and the shared roles): on-policy identity, compile once, learning."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
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
from jaxrl.llm.roles import Actor, actor_loss, as_traced, make_rl_optimizer
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
    assert dapo.filter_zero_std_groups and not GRPOConfig().filter_zero_std_groups
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


def _on_policy_batch(roles, seed=1):
    scores = jax.random.uniform(jax.random.PRNGKey(3), (16,))
    return _rollout(roles, _prompts(TASK, 4), jax.random.PRNGKey(seed), scores)


def test_gspo_on_policy_gradient_equals_grpo_sequence_mean(micro_params):
    """One epoch from π_old: every sᵢ = 1 and ∇L equals the token-ratio GRPO gradient under
    the sequence-mean aggregation (−1/N Σᵢ Aᵢ/|yᵢ| Σₜ ∇log π, both ways)."""
    policy = LoadedModel(micro_params, MICRO, None)
    gspo = make_grpo_roles(_config(importance_sampling="sequence"), policy, TASK)
    grpo = make_grpo_roles(_config(), policy, TASK)
    batch = _on_policy_batch(gspo)
    grad = jax.value_and_grad(actor_loss, has_aux=True)
    (loss_s, m_s), g_s = grad(micro_params, batch, gspo.actor)
    (loss_t, _), g_t = grad(micro_params, batch, grpo.actor)
    np.testing.assert_allclose(float(m_s["ratio_max"]), 1.0, atol=1e-6)
    np.testing.assert_allclose(loss_s, loss_t, rtol=1e-5, atol=1e-7)
    for a, b in zip(jax.tree_util.tree_leaves(g_s), jax.tree_util.tree_leaves(g_t), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    preset = grpo_preset("gspo")
    assert (preset.importance_sampling, preset.clip_eps_low, preset.clip_eps_high) == (
        "sequence",
        3e-4,
        4e-4,
    )
    # log π_old recomputed by the loss's forward pass: the sampler's numbers in float32
    assert preset.recompute_old_log_probs and not GRPOConfig().recompute_old_log_probs
    again = gspo.actor.compute_log_prob(batch._replace(log_probs=None))
    np.testing.assert_allclose(again.log_probs, batch.log_probs, atol=2e-5)


def test_gspo_clipped_sequence_objective_hand_case(micro_params):
    """Old log-probs shifted by δᵢ on every token of row i: sᵢ = exp(δᵢ) whatever the length,
    and L = −1/N Σᵢ min(sᵢ·Aᵢ, clip(sᵢ, 1 − 0.1, 1 + 0.2)·Aᵢ)."""
    cfg = _config(importance_sampling="sequence", clip_eps_low=0.1, clip_eps_high=0.2)
    roles = make_grpo_roles(cfg, LoadedModel(micro_params, MICRO, None), TASK)
    batch = _on_policy_batch(roles)
    delta = np.array([0.3, -0.3, 0.05, -0.05] * 4, np.float32)  # s = 1.35, 0.74, 1.05, 0.95
    adv = np.array([1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0] * 2, np.float32) * 0.5
    mask = np.asarray(batch.mask, np.float32)
    batch = batch._replace(
        log_probs=batch.ref_log_probs - delta[:, None] * mask,  # π_θ = π_ref here
        advantages=jnp.asarray(adv[:, None] * mask),
    )
    loss, metrics = actor_loss(micro_params, batch, roles.actor)
    s = np.exp(delta)
    expected = -np.mean(np.minimum(s * adv, np.clip(s, 0.9, 1.2) * adv))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["ratio_max"]), np.exp(0.3), rtol=1e-5)
    # clipped: s > 1.2 with A > 0 (rows 0, 8), s < 0.9 with A < 0 (rows 5, 13): per token
    lengths = mask.sum(1)
    high = lengths[[0, 8]].sum() / lengths.sum()
    low = lengths[[5, 13]].sum() / lengths.sum()
    np.testing.assert_allclose(float(metrics["clip_fraction_high"]), high, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["clip_fraction_low"]), low, rtol=1e-5)


def test_dynamic_sampling_masks_zero_std_groups(micro_params):
    """Groups with all-equal rewards leave the loss: the loss over the full batch equals the
    loss over the informative groups alone (KL term and token-mean normalisation included)."""
    policy = LoadedModel(micro_params, MICRO, None)
    scores = jnp.array([1.0, 1, 1, 1, 0, 1, 0, 1, 2, 2, 2, 2, 0, 0, 3, 0])
    cfg = dict(aggregation="token_mean", kl_coef=0.3, entropy_coef=0.01)
    roles = make_grpo_roles(_config(filter_zero_std_groups=True, **cfg), policy, TASK)
    plain = make_grpo_roles(_config(**cfg), policy, TASK)
    batch = _rollout(roles, _prompts(TASK, 4), jax.random.PRNGKey(2), scores)
    np.testing.assert_array_equal(batch.keep, np.repeat([0.0, 1, 0, 1], 4))
    rows = np.r_[4:8, 12:16]
    sub = jax.tree_util.tree_map(lambda x: x[rows], batch._replace(keep=None))
    other = init_params(MICRO, jax.random.PRNGKey(9))  # π_θ ≠ π_ref: a non-zero KL term
    loss, metrics = actor_loss(other, batch, roles.actor)
    loss_sub, metrics_sub = actor_loss(other, sub, plain.actor)
    np.testing.assert_allclose(loss, loss_sub, rtol=1e-5)
    for k in ("kl_loss", "entropy", "policy_loss"):
        np.testing.assert_allclose(metrics[k], metrics_sub[k], rtol=1e-5, err_msg=k)
    loss_all, _ = actor_loss(other, batch._replace(keep=None), plain.actor)
    assert abs(float(loss_all) - float(loss)) > 1e-4  # without the filter the loss differs
    from jaxrl.llm.grpo import _group_metrics

    np.testing.assert_allclose(_group_metrics(batch, 4)["kept_group_share"], 0.5)
    assert float(_group_metrics(sub, 4)["kept_group_share"]) == 1.0


def test_generation_stops_at_the_task_eos(micro_params):
    """A task whose stop token is "7": completions end at their first 7, ``finished`` says
    whether one came, and the missing-EOS penalty follows it."""
    task = dataclasses.replace(TASK, eos_ids=(SEVEN,), pad_id=5)
    cfg = _config(missing_eos_penalty=0.5)
    roles = make_grpo_roles(cfg, LoadedModel(micro_params, MICRO, None), task)
    assert roles.actor.generation.eos_ids == (SEVEN,) and roles.actor.generation.pad_id == 5
    batch = roles.actor.generate_sequences(_prompts(task, 16), jax.random.PRNGKey(4))
    tokens, mask = np.asarray(batch.tokens), np.asarray(batch.mask)
    has_seven = ((tokens == SEVEN) & (mask > 0)).any(1)
    np.testing.assert_array_equal(np.asarray(batch.finished), has_seven)
    assert 0 < has_seven.sum() < len(has_seven)  # both kinds of rows in this batch
    for row, m, done in zip(tokens, mask, has_seven, strict=True):
        n = int(m.sum())
        assert (row[n:] == 5).all() and (m[:n] == 1).all()
        if done:
            assert row[n - 1] == SEVEN and SEVEN not in row[: n - 1]
    batch = roles.reference.compute_log_prob(batch)
    batch = roles.reward.compute_reward(batch)
    np.testing.assert_allclose(batch.scores, batch.true_scores - 0.5 * (1 - has_seven))


# --- a pretrained-format model and a dataset task scored on the host ----------------------


def host_reward(prompts, completions, answers):
    """A host reward with spread: the completion's length in characters, modulo 3."""
    host_reward.calls.append(len(completions))
    return np.asarray([len(c) % 3 for c in completions], np.float32)


host_reward.calls = []


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """``(model_dir, policy, task)``: a tiny random Llama directory with a BPE tokenizer and a
    prompt/answer JSONL task whose score is ``host_reward`` through ``jax.pure_callback``."""
    from jaxrl.llm.checkpoint import load_pretrained
    from jaxrl.llm.data import dataset_task
    from jaxrl.llm.testing import tiny_model_dir

    root = tmp_path_factory.mktemp("pretrained")
    model_dir = tiny_model_dir(str(root / "model"))
    rows = [
        {"prompt": f"What is {a} plus {b}?", "answer": str(a + b)}
        for a in range(6)
        for b in range(6)
    ]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = str(root / "train.jsonl")
    task = dataset_task(path, model_dir, reward=host_reward, max_completion_len=6)
    model_config, params = load_pretrained(model_dir)
    return model_dir, LoadedModel(params, model_config, None), task


def _base_leaves(params):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(p): v for p, v in flat if "lora" not in jax.tree_util.keystr(p)}


def _lora_config(**changes):
    base = dict(num_prompts=2, group_size=4, num_minibatches=1, num_epochs=1, lora_rank=2)
    return _config(learning_rate=1e-2, **{**base, **changes})


def test_grpo_step_with_a_host_reward_compiles_once(pretrained):
    """Three LoRA GRPO steps on a pretrained-format model: one compiled program with the
    pure_callback reward inside, the host called once per step, its rewards in the metrics."""
    _, policy, task = pretrained
    roles = make_grpo_roles(_lora_config(), policy, task)
    assert roles.actor.generation.eos_ids == task.eos_ids == (2, 4)
    data = _prompts(task, 6)
    before = grpo_step_jit._cache_size()
    host_reward.calls.clear()
    for i in range(3):
        prompts = jax.tree_util.tree_map(lambda x: x[2 * i : 2 * i + 2], data)
        key = jax.random.PRNGKey(i)
        batch = jax.jit(Actor.generate_sequences)(roles.actor, prompts, jax.random.split(key)[0])
        new_roles, m = grpo_step_jit(roles, prompts, key)
        assert grpo_step_jit._cache_size() == before + 1, f"recompiled at step {i}"
        assert np.isfinite(m["policy_loss"]) and np.isfinite(m["kl_loss"])
        p = batch.prompts  # the step's own rollout, scored again on the host
        expected = task.host_score(
            p.tokens, p.mask, p.answer, p.answer_mask, batch.tokens, batch.mask
        )
        np.testing.assert_allclose(m["true_score"], expected.mean(), rtol=1e-6)
        np.testing.assert_allclose(m["reward_mean"], expected.mean(), rtol=1e-6)
        roles = new_roles
    # one host call of N = 8 rows per step, plus one per re-scoring above
    assert host_reward.calls == [8] * 6


def test_train_grpo_lora_on_a_model_directory(pretrained):
    """LoRA GRPO from a Hugging Face directory: only the adapters move, the reference is the
    base (KL 0 before training), and the held-out evaluation reports accuracy."""
    model_dir, policy, task = pretrained
    cfg = _lora_config(num_steps=2, eval_every=2, eval_prompts=4)  # the step compiled above
    result = train_grpo(cfg, jax.random.PRNGKey(0), policy=model_dir, task=task)
    assert result.model_config.lora_rank == 2
    base, trained = _base_leaves(policy.params), _base_leaves(result.params)
    assert base.keys() == trained.keys()
    for k, v in base.items():
        np.testing.assert_array_equal(trained[k], v, err_msg=k)
    flat = jax.tree_util.tree_flatten_with_path(result.params)[0]
    lora_b = [v for p, v in flat if "lora_b" in jax.tree_util.keystr(p)]
    assert lora_b and max(float(jnp.max(jnp.abs(b))) for b in lora_b) > 0
    assert abs(result.summary["before_kl_ref"]) < 1e-5
    assert {"accuracy", "score", "kl_ref"} <= set(result.summary)
    with pytest.raises(ValueError, match="pretrained model"):
        toy = LoadedModel(init_params(MICRO, jax.random.PRNGKey(0)), MICRO, None)
        make_grpo_roles(_config(lora_rank=2), toy, TASK)
    with pytest.raises(ValueError, match="not both"):
        train_grpo(cfg, jax.random.PRNGKey(0), model_dir, policy=model_dir, task=task)


def test_rl_optimizer_clips_like_optax_and_keeps_bfloat16():
    """The global-norm clip equals optax's in float32, and a bfloat16 gradient with the
    Config's float32 max_grad_norm (a traced leaf) stays bfloat16 (optax's raised)."""
    from jaxrl.llm.rl_update import _clip_by_global_norm

    grads = {"a": jnp.array([3.0, -4.0]), "b": jnp.array([[12.0]])}  # global norm 13
    for max_norm in (1.0, 20.0):
        ours, _ = _clip_by_global_norm(jnp.float32(max_norm)).update(grads, None)
        ref, _ = optax.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())
        for k in grads:
            np.testing.assert_array_equal(ours[k], ref[k])
    half = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), grads)
    clipped, _ = _clip_by_global_norm(jnp.float32(1.0)).update(half, None)
    assert all(v.dtype == jnp.bfloat16 for v in clipped.values())
    np.testing.assert_allclose(clipped["b"].astype(jnp.float32), [[12 / 13]], rtol=1e-2)
    cfg = as_traced(_config())
    opt = make_rl_optimizer(cfg, cfg.learning_rate)
    params = jax.tree_util.tree_map(jnp.zeros_like, half)
    updates, _ = opt.update(half, opt.init(params), params)
    assert all(v.dtype == jnp.bfloat16 for v in optax.apply_updates(params, updates).values())
