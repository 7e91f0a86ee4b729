"""Tests for jaxrl.llm.rlhf: the seven stages, the on-policy identity, compile once, learning."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.sequence import masked_whiten, token_gae
from jaxrl.llm.generate import sequence_log_probs
from jaxrl.llm.rl_loop import LoadedModel
from jaxrl.llm.rlhf import (
    STAGES,
    RLHFConfig,
    compute_advantages,
    make_rlhf_roles,
    rlhf_step_jit,
    rlhf_step_timed,
    train_rlhf,
)
from jaxrl.llm.roles import Reward, actor_loss, value_loss
from jaxrl.llm.transformer import init_params, save_model
from tests.llm.test_grpo import MICRO, TASK, SevensTask, _prompts, pretrained  # noqa: F401

RM_MODEL = MICRO.replace(reward_head=True)


@pytest.fixture(scope="module")
def micro_params():
    return init_params(MICRO, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def reward_model(micro_params):
    """A random reward model: the micro policy's trunk with a random reward head."""
    kernel = jax.random.normal(jax.random.PRNGKey(6), (MICRO.d_model, 1))
    head = {"kernel": kernel, "bias": jnp.zeros((1,))}
    params = {"params": {**micro_params["params"], "reward_head": head}}
    return LoadedModel(params, RM_MODEL, None)


def _config(**changes):
    base = dict(
        num_prompts=16, num_epochs=2, num_minibatches=2, eval_prompts=8, num_train_prompts=32,
        kl_coef=0.1, learning_rate=3e-3, critic_learning_rate=3e-3, warmup_steps=0,
        missing_eos_penalty=0.0,
    )  # fmt: skip
    return RLHFConfig(**{**base, **changes})


def test_stages_on_the_first_step(micro_params, reward_model):
    """π = π_ref: KL 0, the penalised rewards are the score on the last token; GAE + whitening."""
    roles = make_rlhf_roles(_config(), LoadedModel(micro_params, MICRO, None), TASK, reward_model)
    actor, critic, reference, reward = roles
    batch = actor.generate_sequences(_prompts(TASK, 16), jax.random.PRNGKey(1))
    batch = critic.compute_values(batch)
    batch = reference.compute_log_prob(batch)
    batch = jax.jit(Reward.compute_reward)(reward, batch)  # jitted: faster than op by op
    batch = compute_advantages(batch, actor.config)
    np.testing.assert_allclose(batch.ref_log_probs, batch.log_probs, atol=1e-5)
    assert float(jnp.std(batch.scores)) > 0
    last = jnp.sum(batch.mask, axis=1) - 1
    on_last = jnp.take_along_axis(batch.rewards, last[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(on_last, batch.scores, atol=1e-5)
    np.testing.assert_allclose(jnp.sum(batch.rewards, axis=1), batch.scores, atol=1e-5)
    np.testing.assert_array_equal(batch.values, 0.0)  # the critic's value head starts at zero
    # a completion without EOS loses missing_eos_penalty from its score
    cfg = dataclasses.replace(actor.config, missing_eos_penalty=jnp.float32(2.0))
    penalised = jax.jit(Reward.compute_reward)(reward.replace(config=cfg), batch)
    expected = batch.scores - 2.0 * (1.0 - batch.finished)
    assert 0 < int(jnp.sum(batch.finished)) < 16
    np.testing.assert_allclose(penalised.scores, expected, rtol=1e-6)
    adv, ret = token_gae(batch.rewards, batch.values, batch.mask, 1.0, 0.95)
    np.testing.assert_allclose(batch.returns, ret, rtol=1e-6)
    np.testing.assert_allclose(batch.advantages, masked_whiten(adv, batch.mask), rtol=1e-5)
    assert np.all(np.asarray(batch.advantages)[np.asarray(batch.mask) == 0] == 0)

    # on-policy identity of the PPO actor loss: ratio 1, ∇L = −Σ w·A·∇log π (token mean)
    loss_and_grad = jax.value_and_grad(actor_loss, has_aux=True)
    (loss, metrics), g = loss_and_grad(micro_params, batch, actor)
    w = batch.mask / jnp.sum(batch.mask)
    np.testing.assert_allclose(loss, -jnp.sum(w * batch.advantages), atol=1e-5)
    assert float(metrics["approx_kl"]) < 1e-8 and float(metrics["clip_fraction_low"]) == 0.0

    def surrogate(params):
        p = batch.prompts
        lp = sequence_log_probs(params, MICRO, p.tokens, p.mask, batch.tokens, batch.mask)
        return -jnp.sum(w * batch.advantages * lp)

    g_ref = jax.grad(surrogate)(micro_params)
    leaves = zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref), strict=True)
    for a, b in leaves:
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)

    # the value loss at V = V_old: nothing clipped, ½·mean((V − G)²) over real tokens
    v_loss, v_metrics = value_loss(batch.values, batch, actor.config)
    expected = 0.5 * jnp.sum(jnp.square(batch.returns) * batch.mask) / jnp.sum(batch.mask)
    np.testing.assert_allclose(v_loss, expected, rtol=1e-6)
    assert float(v_metrics["value_clip_fraction"]) == 0.0

    # a value head on the actor adds vf_coef · value loss to the actor's loss
    vh = make_rlhf_roles(
        _config(critic="value_head", vf_coef=0.5), LoadedModel(micro_params, MICRO, None), TASK,
        reward_model,
    )  # fmt: skip
    assert vh.critic.state is None and vh.actor.model.value_head
    params = vh.actor.state.params
    with_v, m_v = jax.jit(actor_loss)(params, batch, vh.actor)  # entropy_coef = 0, KL in reward
    np.testing.assert_allclose(with_v, m_v["policy_loss"] + 0.5 * m_v["value_loss"], rtol=1e-5)
    np.testing.assert_allclose(m_v["value_loss"], expected, rtol=1e-5)  # its head starts at 0

    # the adaptive KL coefficient follows Ziegler et al.'s rule on the batch's sequence KL
    fake = batch._replace(ref_log_probs=batch.log_probs - 0.01 * batch.mask)
    seq_kl = float(jnp.mean(jnp.sum(0.01 * batch.mask, axis=1)))
    adaptive = reward.replace(adaptive_kl=True)
    cfg = actor.config
    for target in (0.01, 10.0):
        new = adaptive.replace(config=dataclasses.replace(cfg, target_kl=target))
        beta = float(new.update_kl_coef(fake).kl.kl_coef)
        error = np.clip(seq_kl / target - 1.0, -0.2, 0.2)
        np.testing.assert_allclose(beta, 0.1 * (1 + error * 16 / cfg.kl_horizon), rtol=1e-6)
    assert float(reward.update_kl_coef(fake).kl.kl_coef) == pytest.approx(0.1)  # fixed β


def test_rlhf_step_compiles_once_learns_and_times_stages(micro_params):
    """Task reward = share of 7s (≈ 1/49 at init); the critic starts from the policy."""
    task = SevensTask(num_digits=1)
    roles = make_rlhf_roles(
        _config(kl_coef=0.01), LoadedModel(micro_params, MICRO, None), task
    )  # fmt: skip
    data = _prompts(task, 64)
    key = jax.random.PRNGKey(0)
    before = rlhf_step_jit._cache_size()
    rewards = []
    for i in range(20):
        key, k1, k2 = jax.random.split(key, 3)
        idx = jax.random.randint(k1, (16,), 0, 64)
        roles, m = rlhf_step_jit(roles, jax.tree_util.tree_map(lambda x: x[idx], data), k2)
        rewards.append(float(m["true_score"]))
        assert rlhf_step_jit._cache_size() == before + 1, f"recompiled at step {i}"
    # ≈ 1/49 at init; the last steps score over 7 times that (0.229 on jax 0.10.2 CPU)
    assert np.mean(rewards[:3]) < 0.05
    assert np.mean(rewards[-3:]) > 0.15, rewards
    for name in (
        "reward_mean", "reward_std", "true_score", "kl_ref", "entropy", "clip_fraction_low",
        "clip_fraction_high", "approx_kl", "value_loss", "value_clip_fraction",
        "completion_length", "kl_coef",
    ):  # fmt: skip
        assert np.isfinite(m[name]), name
    prompts = jax.tree_util.tree_map(lambda x: x[:16], data)
    _, metrics = rlhf_step_jit(roles, prompts, jax.random.PRNGKey(1))
    _, timed = rlhf_step_timed(roles, prompts, jax.random.PRNGKey(1))
    for k, v in metrics.items():
        np.testing.assert_allclose(timed[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
    assert {f"time_{s}" for s in STAGES} <= set(timed)


def test_train_rlhf_from_saved_models(tmp_path, micro_params):
    save_model(str(tmp_path / "sft"), micro_params, MICRO)
    cfg = _config(kl_coef=0.01, num_steps=2, eval_every=1)  # the step of the test above
    calls = []
    result = train_rlhf(
        cfg, jax.random.PRNGKey(0), init_from=str(tmp_path / "sft"), task=SevensTask(num_digits=1),
        progress_callback=lambda step, numbers: calls.append(step),
    )  # fmt: skip
    assert calls == [1, 2]
    assert result.metrics["kl_coef"].shape == (2,)
    np.testing.assert_allclose(result.metrics["kl_coef"], 0.01)
    assert result.evals["step"].tolist() == [0, 1, 2]
    assert {"score", "kl_ref", "accuracy", "before_score"} <= set(result.summary)
    assert not result.model_config.value_head


def test_config_validation():
    with pytest.raises(ValueError, match="critic"):
        RLHFConfig(critic="shared")
    with pytest.raises(ValueError, match="num_minibatches"):
        RLHFConfig(num_prompts=6, num_minibatches=4)
    with pytest.raises(ValueError, match="gae_lambda"):
        RLHFConfig(gae_lambda=1.5)
    with pytest.raises(ValueError, match="init_from"):
        train_rlhf(RLHFConfig(), jax.random.PRNGKey(0))


def _trunk(params):
    """The transformer's own leaves (no heads, no adapters), by path."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    skip = ("lora", "value_head", "reward_head")
    return {
        jax.tree_util.keystr(p): v
        for p, v in flat
        if not any(s in jax.tree_util.keystr(p) for s in skip)
    }


def test_rlhf_lora_on_a_pretrained_model_critic_from_either_source(pretrained, tmp_path):  # noqa: F811
    """On a preference JSONL (no score of its own) with a reward model: the critic starts
    from the reward model or the policy (critic_init); with LoRA two steps compile once,
    move only adapters and heads, and keep the frozen base."""
    from jaxrl.llm.data import dataset_task

    model_dir, policy, _ = pretrained
    rows = [
        {"prompt": f"Say {w}.", "chosen": f"{w}!", "rejected": "no"}
        for w in ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    ]
    (tmp_path / "pref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = dataset_task(str(tmp_path / "pref.jsonl"), model_dir, max_completion_len=6)
    assert task.kind == "preference" and not task.has_score
    rm_model = policy.model_config.replace(reward_head=True)
    rm_params = init_params(rm_model, jax.random.PRNGKey(7))  # another trunk
    head = rm_params["params"]["reward_head"]
    head = {**head, "kernel": jax.random.normal(jax.random.PRNGKey(8), head["kernel"].shape)}
    rm_params = {"params": {**rm_params["params"], "reward_head": head}}
    rm = LoadedModel(rm_params, rm_model, None)
    cfg = _config(num_prompts=4, num_minibatches=1, num_epochs=1, lora_rank=2)
    for init, source in (("policy", policy.params), ("reward_model", rm_params)):
        critic = make_rlhf_roles(_config(critic_init=init), policy, task, rm).critic
        expected, got = _trunk(source), _trunk(critic.params)
        assert expected.keys() == got.keys()
        for k, v in expected.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"{init}: {k}")
    with pytest.raises(ValueError, match="critic_init"):
        RLHFConfig(critic_init="reference")
    with pytest.raises(ValueError, match="no score"):
        make_rlhf_roles(cfg, policy, task)

    roles = make_rlhf_roles(cfg, policy, task, rm)
    assert roles.actor.model.lora_rank == 2 and roles.critic.model.lora_rank == 2
    assert roles.reference.params is None  # the base weights, read from the actor's params
    start = roles
    data = _prompts(task, 8)
    before = rlhf_step_jit._cache_size()
    for i in range(2):
        prompts = jax.tree_util.tree_map(lambda x: x[4 * i : 4 * i + 4], data)
        roles, m = rlhf_step_jit(roles, prompts, jax.random.PRNGKey(i))
        assert rlhf_step_jit._cache_size() == before + 1, f"recompiled at step {i}"
        assert np.isfinite(m["policy_loss"]) and np.isfinite(m["value_loss"])
        assert np.isfinite(m["reward_mean"]) and np.isnan(m["true_score"])  # RM scores only
    for old, new in (
        (start.actor.state.params, roles.actor.state.params),
        (start.critic.params, roles.critic.params),
    ):
        for k, v in _trunk(old).items():
            np.testing.assert_array_equal(_trunk(new)[k], v, err_msg=k)
    moved = jax.tree_util.tree_map(
        lambda a, b: float(jnp.max(jnp.abs(a - b))), start.critic.params, roles.critic.params
    )
    assert max(jax.tree_util.tree_leaves(moved["params"]["value_head"])) > 0
    lora_b = [
        v
        for p, v in jax.tree_util.tree_flatten_with_path(roles.actor.state.params)[0]
        if "lora_b" in jax.tree_util.keystr(p)
    ]
    assert max(float(jnp.max(jnp.abs(b))) for b in lora_b) > 0


# A resumed RLHF run (actor, critic, adaptive KL controller, prompt order) is checked in
# tests/llm/test_resume.py::test_rlhf_resume_restores_the_adaptive_kl_controller.
