"""LoRA on a loaded model: a fresh adapter is the base, training moves only adapters, the
reference (adapters off) is the base, merge/export keep the function; bf16 and remat options."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors import safe_open

from jaxrl.llm import (
    GRPOConfig,
    LoadedModel,
    SFTConfig,
    adapter_params,
    add_lora,
    forward,
    grpo_step_jit,
    init_sft_state,
    load_pretrained,
    make_grpo_roles,
    make_reference,
    make_sft_update,
    merge_lora,
    reference_config,
    save_adapter,
    save_pretrained,
    sequence_log_probs,
    sft_loss,
)
from jaxrl.llm.tasks import AdditionTask, SFTData
from jaxrl.llm.testing import tiny_model_dir

from .conftest import left_padded_batch

RANK = 4


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tiny_model_dir(str(tmp_path_factory.mktemp("lora_base")), "qwen2", seed=3)
    return path, *load_pretrained(path)


@pytest.fixture(scope="module")
def sft_batch():
    rng = np.random.default_rng(0)
    prompt, mask = left_padded_batch(320, seed=5)
    completion = rng.integers(5, 320, (3, 6)).astype(np.int32)
    c_mask = np.ones((3, 6), np.int32)
    c_mask[2, 4:] = 0
    return SFTData(prompt, mask, completion, c_mask)


@pytest.fixture(scope="module")
def trained(base, sft_batch):
    """(lora config, params before, params after 3 SFT steps on adapters, losses)."""
    _, config, params = base
    lcfg, lparams = add_lora(config, params, jax.random.PRNGKey(1), rank=RANK)
    sft = SFTConfig(model=lcfg, learning_rate=1e-2, warmup_steps=0, num_steps=10, eval_every=10)
    state = init_sft_state(sft, jax.random.PRNGKey(0), params=lparams)
    update = jax.jit(make_sft_update(sft))
    losses = []
    for _ in range(3):
        state, metrics = update(state, sft_batch)
        losses.append(float(metrics["loss"]))
    return lcfg, lparams, state.params, losses


def _flat(params):
    return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}


def test_fresh_adapter_equals_base(base, trained):
    _, config, params = base
    lcfg, lparams, _, _ = trained
    tokens, mask = left_padded_batch(config.vocab_size)
    n_adapters = len(adapter_params(lparams))
    assert n_adapters == 2 * config.num_layers * len(lcfg.lora_targets)
    np.testing.assert_allclose(
        forward(lcfg, lparams, tokens, mask), forward(config, params, tokens, mask), atol=1e-6
    )


def test_training_changes_only_adapters(trained):
    _, before, after, losses = trained
    assert losses[-1] < losses[0]
    b, a = _flat(before), _flat(after)
    assert b.keys() == a.keys()
    moved = {k for k in b if not np.array_equal(np.asarray(b[k]), np.asarray(a[k]))}
    assert moved and all("lora_" in k for k in moved), sorted(moved)[:5]
    assert any("lora_b" in k for k in moved)  # B leaves zero: the adapter now acts


def test_reference_is_base_with_adapters_off(base, trained, sft_batch):
    _, config, params = base
    lcfg, _, after, _ = trained
    args = (
        sft_batch.prompt_tokens,
        sft_batch.prompt_mask,
        sft_batch.completion_tokens,
        sft_batch.completion_mask,
    )
    ref = sequence_log_probs(after, reference_config(lcfg), *args)
    np.testing.assert_allclose(ref, sequence_log_probs(params, config, *args), atol=1e-6)
    policy = sequence_log_probs(after, lcfg, *args)
    assert np.abs(np.asarray(policy) - np.asarray(ref)).max() > 1e-3
    reference = make_reference(LoadedModel(after, lcfg, None))
    assert reference.params is None and not reference.model.lora_active


def test_merge_and_export_keep_the_function(trained, tmp_path):
    lcfg, _, after, _ = trained
    tokens, mask = left_padded_batch(lcfg.vocab_size, seed=4)
    want = forward(lcfg, after, tokens, mask)
    mcfg, merged = merge_lora(lcfg, after)
    assert mcfg.lora_rank == 0 and not adapter_params(merged)
    np.testing.assert_allclose(forward(mcfg, merged, tokens, mask), want, atol=1e-5)
    save_pretrained(str(tmp_path / "merged"), lcfg, after)
    cfg2, params2 = load_pretrained(str(tmp_path / "merged"))
    np.testing.assert_allclose(forward(cfg2, params2, tokens, mask), want, atol=1e-5)
    save_adapter(str(tmp_path / "adapter"), lcfg, after)
    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), "numpy") as f:
        names = list(f.keys())
        q_a = f.get_tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
    assert len(names) == len(adapter_params(after)) and all(".lora_" in n for n in names)
    assert q_a.shape == (RANK, lcfg.d_model)
    assert os.path.exists(tmp_path / "adapter" / "adapter_config.json")


def test_bf16_base_with_float32_adapters(base, sft_batch):
    path, _, _ = base
    config, params = load_pretrained(path, dtype="bfloat16")
    lcfg, lparams = add_lora(config, params, jax.random.PRNGKey(1), rank=RANK)
    adapters = adapter_params(lparams)
    assert {v.dtype for v in adapters.values()} == {np.dtype(jnp.float32)}
    sft = SFTConfig(model=lcfg, learning_rate=1e-2, warmup_steps=0, num_steps=10, eval_every=10)
    state = init_sft_state(sft, jax.random.PRNGKey(0), params=lparams)
    state, metrics = jax.jit(make_sft_update(sft))(state, sft_batch)
    assert np.isfinite(float(metrics["loss"]))
    new = _flat(state.params)
    for k, v in _flat(lparams).items():
        assert new[k].dtype == v.dtype  # bf16 base stays bf16, adapters stay float32
        if "lora_" not in k:
            np.testing.assert_array_equal(np.asarray(new[k]), np.asarray(v))


def test_remat_gives_the_same_loss_and_grads(trained, sft_batch):
    lcfg, _, after, _ = trained

    def loss_grad(cfg):
        return jax.jit(jax.value_and_grad(lambda p: sft_loss(p, cfg, sft_batch)[0]))(after)

    (l0, g0), (l1, g1) = loss_grad(lcfg), loss_grad(lcfg.replace(remat=True))
    np.testing.assert_allclose(l0, l1, rtol=1e-6)
    for x, y in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_grpo_step_on_a_lora_policy(base, trained):
    """A loaded model goes through the library's GRPO as the toy one does (item 7): with
    ``lora_rank`` the base is frozen and is the reference (no second copy); a policy that
    already carries adapters (a LoRA SFT run) is merged first and is the reference."""
    _, config, params = base
    task = AdditionTask(num_digits=1)
    cfg = GRPOConfig(
        num_prompts=2, group_size=2, num_epochs=1, num_minibatches=1, kl_coef=0.1,
        lora_rank=RANK,
    )  # fmt: skip
    roles = make_grpo_roles(cfg, LoadedModel(params, config, None), task)
    assert roles.reference.params is None
    prompts = task.prompts("train", 2, seed=0)
    roles, metrics = grpo_step_jit(roles, prompts, jax.random.PRNGKey(0))
    assert abs(float(metrics["kl_ref"])) < 1e-5  # B = 0 at the start: policy = reference
    before, after = _flat(params), _flat(roles.actor.state.params)
    assert any("lora_" in k for k in after)
    for k, v in before.items():
        np.testing.assert_array_equal(np.asarray(after[k]), np.asarray(v))

    lcfg, _, sft_params, _ = trained
    _, merged = merge_lora(lcfg, sft_params)
    full = dataclasses.replace(cfg, lora_rank=0)
    roles = make_grpo_roles(full, LoadedModel(sft_params, lcfg, None), task)
    assert roles.actor.model.lora_rank == 0
    for x, y in zip(jax.tree_util.tree_leaves(roles.reference.params),
                    jax.tree_util.tree_leaves(merged), strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
