"""Tests of the SFT, reward-model and DPO trainers: losses, padding, learning, compilation."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.llm import (
    DPOConfig,
    RewardModelConfig,
    SFTConfig,
    dpo_batch_loss,
    init_params,
    make_dpo_batch,
    make_task,
    sft_loss,
    train_dpo,
    train_reward_model,
    train_sft,
)
from jaxrl.llm import dpo as dpo_module
from jaxrl.llm import reward_model as rm_module
from jaxrl.llm import sft as sft_module
from jaxrl.llm.checkpoint import load_pretrained
from jaxrl.llm.data import dataset_task
from jaxrl.llm.lora import is_adapter, merge_lora
from jaxrl.llm.testing import tiny_model_dir

from .conftest import TINY, pad_more

MODEL = TINY.replace(max_len=16)


def traced_once(monkeypatch, module, name):
    """Makes ``module.name`` (an update factory) return an update that may be traced once.

    The trainers run several compiled chunks; a second trace would mean a recompilation.
    """
    factory = getattr(module, name)

    def counted_factory(config, *args):
        update = factory(config, *args)

        def counted_update(state, batch):
            return update(state, batch)

        return chex.assert_max_traces(counted_update, n=1)

    monkeypatch.setattr(module, name, counted_factory)


def test_sft_learns_sorting_and_compiles_once(monkeypatch):
    traced_once(monkeypatch, sft_module, "make_sft_update")
    config = SFTConfig(
        task="sorting",
        task_options={"max_len": 4},
        model=MODEL,
        num_steps=200,
        eval_every=100,
        batch_size=32,
        num_train_examples=4000,
        eval_prompts=128,
        learning_rate=3e-3,
        warmup_steps=20,
    )
    result = train_sft(config, jax.random.PRNGKey(0))
    loss = result.metrics["loss"]
    assert loss.shape == (200,)
    assert np.mean(loss[-20:]) < 0.05 * np.mean(loss[:10])
    acc = result.evals["heldout_accuracy"]
    print(f"SFT sorting: held-out exact-match accuracy {acc[0]:.3f} -> {acc[-1]:.3f}")
    # measured 0.92 and 0.99 on 128 unseen digit strings after 200 updates (seeds 0 and 1;
    # loss ratio 0.016 and 0.013)
    assert acc[0] < 0.05 and acc[-1] >= 0.8
    np.testing.assert_array_equal(result.evals["step"], [0, 100, 200])


def test_reward_model_beats_chance_and_compiles_once(monkeypatch, xla_optimized):
    traced_once(monkeypatch, rm_module, "make_reward_model_update")
    config = RewardModelConfig(
        model=MODEL,
        num_steps=800,
        eval_every=400,
        batch_size=64,
        num_train_pairs=4000,
        eval_pairs=500,
        learning_rate=3e-3,
        warmup_steps=20,
    )
    result = train_reward_model(config, jax.random.PRNGKey(0))
    s = result.summary
    print(
        f"reward model: held-out accuracy {s['heldout_accuracy']:.3f} (labels), "
        f"{s['heldout_true_accuracy']:.3f} (hidden score), margin {s['heldout_margin']:.3f}"
    )
    # 500 held-out pairs: chance is 0.5 ± 0.022; measured 0.65–0.67 and 0.71–0.72 (3 seeds);
    # jax 0.10.2 CPU, seed 0: 0.628 and 0.690 (0.636 and 0.694 compiled without optimisations)
    assert s["heldout_accuracy"] >= 0.6 and s["heldout_true_accuracy"] >= 0.65
    assert s["heldout_margin"] > 0


def test_dpo_starts_at_ln2_and_separates_the_pairs(monkeypatch):
    traced_once(monkeypatch, dpo_module, "make_dpo_update")
    config = DPOConfig(
        model=MODEL,
        num_steps=60,
        eval_every=30,
        batch_size=32,
        num_train_pairs=1000,
        eval_pairs=200,
        eval_prompts=32,
        learning_rate=1e-3,
        warmup_steps=1,
    )
    params = init_params(MODEL, jax.random.PRNGKey(1))
    result = train_dpo(config, jax.random.PRNGKey(2), params)
    m = result.metrics
    # the first update sees policy = reference
    np.testing.assert_allclose(m["loss"][0], np.log(2.0), atol=1e-5)
    np.testing.assert_allclose(m["margin"][0], 0.0, atol=1e-6)
    assert np.mean(m["loss"][-10:]) < np.log(2.0)
    assert result.evals["train_margin"][-1] > 0.5
    assert result.evals["kl"][0] == pytest.approx(0.0, abs=1e-4)
    assert result.evals["heldout_pref_accuracy"][0] == 0.5  # all ties at the start


@pytest.fixture(scope="module")
def pairs():
    task = make_task("preference")
    return task.preference_pairs("train", 16, seed=0)


def padded_pairs(p, left=3, right=4):
    pt, pm = pad_more(p.prompt_tokens, p.prompt_mask, left=left)
    ct, cm = pad_more(p.chosen_tokens, p.chosen_mask, right=right)
    rt, rm = pad_more(p.rejected_tokens, p.rejected_mask, right=right)
    return p._replace(
        prompt_tokens=pt,
        prompt_mask=pm,
        chosen_tokens=ct,
        chosen_mask=cm,
        rejected_tokens=rt,
        rejected_mask=rm,
    )


def test_extra_padding_leaves_losses_unchanged(pairs):
    params = init_params(MODEL.replace(max_len=32), jax.random.PRNGKey(3))
    cfg = MODEL.replace(max_len=32)
    sft = jax.jit(sft_loss, static_argnums=1)
    data = make_task("addition").sft_data("train", 16, seed=0)
    pt, pm = pad_more(data.prompt_tokens, data.prompt_mask, left=3)
    ct, cm = pad_more(data.completion_tokens, data.completion_mask, right=5)
    a, b = (
        sft(params, cfg, data)[0],
        sft(
            params,
            cfg,
            data._replace(
                prompt_tokens=pt, prompt_mask=pm, completion_tokens=ct, completion_mask=cm
            ),
        )[0],
    )
    np.testing.assert_allclose(a, b, rtol=1e-5)

    # the reward model's score is checked under padding in test_generate.py

    # the sigmoid kind runs in the DPO training test; here SimPO with an NLL term
    dpo_cfg = DPOConfig(model=cfg, loss_kind="simpo", nll_coef=0.5)
    ref = jax.tree_util.tree_map(lambda x: x * 1.01, params)
    batch, padded = make_dpo_batch(ref, cfg, pairs), make_dpo_batch(ref, cfg, padded_pairs(pairs))
    np.testing.assert_allclose(batch.ref_chosen_logps, padded.ref_chosen_logps, rtol=1e-5)
    loss = jax.jit(dpo_batch_loss, static_argnums=(1, 3))
    (a, ma), (b, mb) = loss(params, cfg, batch, dpo_cfg), loss(params, cfg, padded, dpo_cfg)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    np.testing.assert_allclose(ma["margin"], mb["margin"], rtol=1e-4, atol=1e-6)


def test_configs_validate():
    with pytest.raises(ValueError, match="num_steps"):
        SFTConfig(num_steps=0)
    with pytest.raises(ValueError, match="eval_every"):
        SFTConfig(num_steps=300, eval_every=7)
    with pytest.raises(ValueError, match="known tasks"):
        SFTConfig(task="chess")
    with pytest.raises(ValueError, match="max_len"):
        SFTConfig(model=MODEL.replace(max_len=4))
    with pytest.raises(ValueError, match="loss_kind"):
        DPOConfig(loss_kind="kto")
    with pytest.raises(ValueError, match="label_smoothing"):
        DPOConfig(loss_kind="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match="preference task"):
        RewardModelConfig(task="addition")
    assert RewardModelConfig(model=MODEL).model.reward_head


# --- pretrained (Hugging Face) models and dataset files --------------------------------------

WORDS = ["fox", "dog", "model", "token", "policy", "reward", "hello", "seven"]


def write_jsonl(path, rows):
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    """A tiny random Llama directory, prompt/completion and preference JSONL files (train and
    held-out), and the base params."""
    root = tmp_path_factory.mktemp("pretrained")
    model_dir = tiny_model_dir(str(root / "model"))
    sft_rows = [{"prompt": f"Repeat: {w}", "completion": w} for w in WORDS]
    # separable pairs: the chosen reply is always the same polite sentence
    pref_rows = [
        {"prompt": f"Say something about the {w}.", "chosen": "I am fine, thank you.",
         "rejected": f"The {w} jumps over the lazy dog."}
        for w in WORDS
    ]  # fmt: skip
    files = {
        "sft": write_jsonl(root / "sft.jsonl", sft_rows),
        "sft_eval": write_jsonl(root / "sft_eval.jsonl", sft_rows[:4]),
        "pref": write_jsonl(root / "pref.jsonl", pref_rows),
        "pref_eval": write_jsonl(root / "pref_eval.jsonl", pref_rows[:4]),
    }
    config, params = load_pretrained(model_dir)
    return model_dir, files, config, params


def test_sft_on_a_jsonl_dataset_lowers_the_loss(hf_run):
    model_dir, files, base_config, _ = hf_run
    task = dataset_task(files["sft"], model_dir, eval_path=files["sft_eval"])
    config = SFTConfig(
        num_steps=20, eval_every=10, batch_size=8, learning_rate=3e-3, warmup_steps=2,
        eval_prompts=4,
    )  # fmt: skip
    result = train_sft(config, jax.random.PRNGKey(0), init_from=model_dir, task=task)
    assert result.model_config == base_config  # the loaded model replaced config.model
    loss, heldout = result.metrics["loss"], result.evals["heldout_loss"]
    print(f"SFT on JSONL: train loss {loss[0]:.2f} -> {loss[-1]:.2f}, held-out {heldout}")
    # measured 6.80 -> 3.77 (train) and 6.83 -> 3.45 (held-out), load 15
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.7 * loss[0]
    assert heldout[-1] < 0.7 * heldout[0]  # held-out rows are 4 of the 8 training rows
    assert "heldout_accuracy" in result.evals  # prompt/completion rows are verifiable


def test_reward_model_on_a_preference_jsonl(hf_run):
    model_dir, files, _, _ = hf_run
    task = dataset_task(files["pref"], model_dir, eval_path=files["pref_eval"])
    config = RewardModelConfig(
        num_steps=10, eval_every=5, batch_size=8, learning_rate=1e-2, warmup_steps=1,
        eval_pairs=4,
    )  # fmt: skip
    result = train_reward_model(config, jax.random.PRNGKey(0), init_from=model_dir, task=task)
    loss = result.metrics["loss"]
    np.testing.assert_allclose(loss[0], np.log(2.0), atol=1e-6)  # the head starts at zero
    # measured 0.693 -> 0.628 in 10 updates at learning rate 3e-3
    assert np.all(np.isfinite(loss)) and loss[-1] < np.log(2.0) - 0.05
    assert np.all(np.diff(loss[1:]) < 0)  # falls at every update after the first
    assert result.evals["heldout_accuracy"][-1] == 1.0
    assert "heldout_true_accuracy" not in result.evals  # the dataset has no hidden score


def test_dpo_with_lora_trains_adapters_only_against_the_base(hf_run):
    model_dir, files, base_config, base = hf_run
    task = dataset_task(files["pref"], model_dir, eval_path=files["pref_eval"])
    config = DPOConfig(
        num_steps=10, eval_every=5, batch_size=8, learning_rate=1e-2, warmup_steps=1,
        eval_pairs=4, eval_prompts=4, beta=0.5, lora_rank=4, lora_alpha=8.0,
    )  # fmt: skip
    result = train_dpo(config, jax.random.PRNGKey(0), model_dir, task=task)
    m = result.metrics
    np.testing.assert_allclose(m["loss"][0], np.log(2.0), atol=1e-5)  # B = 0: policy = base
    assert np.mean(m["loss"][-3:]) < np.log(2.0) - 0.1
    assert result.evals["kl"][0] == pytest.approx(0.0, abs=1e-4)
    assert result.evals["heldout_margin"][0] == 0.0 < result.evals["heldout_margin"][-1]
    assert "score" not in result.evals  # a preference file without a reward
    assert result.model_config.lora_rank == 4
    flat = jax.tree_util.tree_flatten_with_path(result.params)[0]
    base_flat = dict(jax.tree_util.tree_flatten_with_path(base)[0])
    adapters = [(p, v) for p, v in flat if is_adapter(p)]
    assert adapters and any(np.abs(np.asarray(v)).max() > 0 for p, v in adapters)
    for p, v in flat:
        if not is_adapter(p):
            np.testing.assert_array_equal(np.asarray(v), np.asarray(base_flat[p]))
    merged_config, merged = merge_lora(result.model_config, result.params)
    assert merged_config.lora_rank == 0
    assert jax.tree_util.tree_structure(merged) == jax.tree_util.tree_structure(base)
    diff = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max()), merged, base)
    assert max(jax.tree_util.tree_leaves(diff)) > 0


def test_starting_model_errors_are_one_line():
    with pytest.raises(ValueError, match="pretrained-type"):
        train_sft(SFTConfig(model=MODEL, lora_rank=4), jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        # the character tokenizer's digits are ids 4-13
        small = SFTConfig(
            model=MODEL.replace(vocab_size=8), num_train_examples=8, num_steps=2, eval_every=1
        )
        train_sft(small, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="lora_rank"):
        DPOConfig(lora_rank=-1)
    with pytest.raises(ValueError, match="needs policy"):
        train_dpo(DPOConfig(), jax.random.PRNGKey(0))


def test_reference_and_evaluation_log_probs_share_one_program(tiny_params):
    """The reference's PreferencePairs and the evaluation's DPOBatch of the same shapes go
    through one compiled pair_log_probs (they used to compile it once each)."""
    pairs = make_task("preference").preference_pairs("heldout", 5, seed=1)  # a shape of its own
    batch = dpo_module.make_dpo_batch(tiny_params, TINY, pairs)  # compiles the program once
    compiled = dpo_module._pair_log_probs_of_tokens._cache_size()
    chosen, rejected = dpo_module._jit_pair_log_probs(tiny_params, TINY, batch)
    assert dpo_module._pair_log_probs_of_tokens._cache_size() == compiled
    np.testing.assert_array_equal(chosen, batch.ref_chosen_logps)
    np.testing.assert_array_equal(rejected, batch.ref_rejected_logps)
