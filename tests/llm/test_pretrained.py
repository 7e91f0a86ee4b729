"""Pretrained Llama/Qwen2/Qwen3 checkpoints against transformers: logits, greedy generation,
tokenizer and chat template, export, and one line for each malformed checkpoint."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

from jaxrl import cli
from jaxrl.llm import (
    GenerationConfig,
    forward,
    generate,
    load_pretrained,
    load_tokenizer,
    save_pretrained,
)

from .conftest import HF_ARCHS, hf_logits, left_padded_batch


@pytest.mark.parametrize("arch", HF_ARCHS)
def test_logits_equal_transformers_on_left_padded_batch(hf_models, arch):
    path, model = hf_models[arch]
    config, params = load_pretrained(path)
    assert config.model_type == arch
    tokens, mask = left_padded_batch(config.vocab_size)
    ours = np.asarray(forward(config, params, tokens, mask))
    ref = hf_logits(model, tokens, mask)
    assert np.abs(ref[mask > 0]).max() > 0.1  # not a degenerate model
    np.testing.assert_allclose(ours[mask > 0], ref[mask > 0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", HF_ARCHS)
def test_greedy_generation_equals_transformers(hf_models, arch):
    path, model = hf_models[arch]
    config, params = load_pretrained(path)
    tokens, mask = left_padded_batch(config.vocab_size, seed=1)
    eos = (2, 4)
    gen = generate(
        params,
        config,
        GenerationConfig(max_new_tokens=16, greedy=True, eos_id=eos, pad_id=0),
        tokens,
        mask,
        jax.random.PRNGKey(0),
    )
    with torch.no_grad():
        ref = model.generate(
            input_ids=torch.tensor(tokens, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            max_new_tokens=16,
            do_sample=False,
            eos_token_id=list(eos),
            pad_token_id=0,
        )[:, tokens.shape[1] :].numpy()
    ref = np.pad(ref, ((0, 0), (0, 16 - ref.shape[1])))  # transformers stops when all rows end
    np.testing.assert_array_equal(np.asarray(gen.tokens), ref)
    assert len(np.unique(ref)) > 3


def test_sharded_checkpoint_and_bfloat16(hf_models, tmp_path):
    _, model = hf_models["qwen2"]
    model.save_pretrained(str(tmp_path), max_shard_size="20KB")
    assert os.path.exists(tmp_path / "model.safetensors.index.json")
    config, params = load_pretrained(str(tmp_path))
    tokens, mask = left_padded_batch(config.vocab_size)
    ref = hf_logits(model, tokens, mask)
    np.testing.assert_allclose(
        np.asarray(forward(config, params, tokens, mask))[mask > 0], ref[mask > 0], atol=1e-4
    )
    config16, params16 = load_pretrained(str(tmp_path), dtype="bfloat16")
    assert {x.dtype for x in jax.tree_util.tree_leaves(params16)} == {np.dtype(jax.numpy.bfloat16)}
    low = np.asarray(forward(config16, params16, tokens, mask))
    assert low.dtype == np.float32
    np.testing.assert_allclose(low[mask > 0], ref[mask > 0], atol=0.1)


@pytest.mark.parametrize("arch", HF_ARCHS)
def test_save_then_transformers_loads_same_logits(hf_models, arch, tmp_path):
    path, model = hf_models[arch]
    config, params = load_pretrained(path)
    save_pretrained(str(tmp_path), config, params)
    again = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path)).eval()
    tokens, mask = left_padded_batch(config.vocab_size, seed=2)
    np.testing.assert_allclose(
        hf_logits(again, tokens, mask)[mask > 0],
        hf_logits(model, tokens, mask)[mask > 0],
        atol=1e-6,
    )


def test_tokenizer_and_chat_template_equal_transformers(hf_models):
    path, _ = hf_models["llama"]
    ours = load_tokenizer(path)
    ref = transformers.AutoTokenizer.from_pretrained(path)
    texts = ["Hello world!", "The quick brown fox, 42 times.", "  spaces  and\nnewlines", ""]
    for text in texts:
        assert ours.encode(text) == ref(text)["input_ids"]
        assert (
            ours.encode(text, add_special_tokens=False)
            == ref(text, add_special_tokens=False)["input_ids"]
        )
        assert ours.decode(ours.encode(text)) == ref.decode(ref(text)["input_ids"], True)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": " Five. "},
        {"role": "user", "content": "And 7 x 6?"},
    ]
    for gen_prompt in (True, False):
        text = ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen_prompt)
        assert ours.apply_chat_template(messages, add_generation_prompt=gen_prompt) == text
        ids = ref.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen_prompt)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        assert ours.apply_chat_template(messages, gen_prompt, tokenize=True) == list(ids)
    assert ours.bos_id == ref.bos_token_id == 1
    assert ours.pad_id == ref.pad_token_id == 0
    assert ours.eos_ids == (2, 4)  # generation_config.json's list, then the tokenizer's EOS
    tokens, mask = ours.encode_batch(["Hi", "The quick brown fox"])
    assert tokens.shape == mask.shape and mask[0, 0] == 0 and mask[:, -1].all()


def test_generation_stops_on_any_eos(hf_models):
    path, _ = hf_models["qwen3"]
    config, params = load_pretrained(path)
    tokens, mask = left_padded_batch(config.vocab_size, seed=1)
    free = generate(
        params,
        config,
        GenerationConfig(max_new_tokens=8, greedy=True),
        tokens,
        mask,
        jax.random.PRNGKey(0),
    )
    first = np.asarray(free.tokens)[:, 2]  # make each row's third token a stop token
    stop = GenerationConfig(max_new_tokens=8, greedy=True, eos_id=tuple(int(t) for t in first))
    gen = generate(params, config, stop, tokens, mask, jax.random.PRNGKey(0))
    assert np.asarray(gen.finished).all()
    for row, m in zip(np.asarray(gen.tokens), np.asarray(gen.mask), strict=True):
        n = int(m.sum())
        assert n <= 3 and row[n - 1] in first and np.all(row[n:] == stop.pad_id)


def _broken(src, dst, edit):
    shutil.copytree(src, dst)
    edit(dst)
    return str(dst)


def _rewrite_tensors(change):
    def edit(d):
        f = os.path.join(d, "model.safetensors")
        tensors = load_file(f)
        change(tensors)
        save_file(tensors, f)

    return edit


def _set_config(**changes):
    def edit(d):
        f = os.path.join(d, "config.json")
        with open(f) as fh:
            cfg = json.load(fh)
        cfg.update(changes)
        with open(f, "w") as fh:
            json.dump(cfg, fh)

    return edit


def _truncate(d):
    f = os.path.join(d, "model.safetensors")
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:
        fh.truncate(size - 100)


Q = "model.layers.1.self_attn.q_proj.weight"
CASES = {
    "model_type": (_set_config(model_type="gpt2"), ["config.json", "'gpt2'", "llama, qwen2"]),
    "missing": (
        _rewrite_tensors(lambda t: t.pop(Q)),
        ["model.safetensors", Q, "missing", "[32, 32]"],
    ),
    "extra": (
        _rewrite_tensors(lambda t: t.update(extra=np.zeros(3, np.float32))),
        ["model.safetensors", "'extra'", "unexpected"],
    ),
    "shape": (
        _rewrite_tensors(lambda t: t.update({Q: np.zeros((32, 16), np.float32)})),
        ["model.safetensors", Q, "[32, 16]", "expected [32, 32]"],
    ),
    "truncated": (_truncate, ["model.safetensors", "truncated"]),
    "no_config": (lambda d: os.remove(os.path.join(d, "config.json")), ["config.json"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_checkpoint_one_line(hf_models, tmp_path, capsys, case):
    edit, needles = CASES[case]
    path = _broken(hf_models["qwen2"][0], tmp_path / case, edit)
    with pytest.raises(ValueError) as info:
        load_pretrained(path)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    # the CLI: one line on stderr, exit status 2, no traceback
    assert cli.main(["llm", "generate", "--model", path, "--prompt", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_generate_prints_the_completion(hf_models, capsys):
    path, _ = hf_models["llama"]
    argv = ["llm", "generate", "--model", path, "--prompt", "Hello", "--max-new-tokens", "6"]
    assert cli.main([*argv, "--greedy", "--chat"]) == 0
    out = capsys.readouterr().out
    config, params = load_pretrained(path)
    tok = load_tokenizer(path)
    text = tok.apply_chat_template([{"role": "user", "content": "Hello"}])
    ids, mask = tok.encode_batch([text], add_special_tokens=False)
    gen = generate(
        params,
        config,
        GenerationConfig(max_new_tokens=6, greedy=True, eos_id=tok.eos_ids, pad_id=tok.pad_id),
        ids,
        mask,
        jax.random.PRNGKey(0),
    )
    expected = tok.decode(np.asarray(gen.tokens)[0][np.asarray(gen.mask)[0] > 0])
    assert out == expected + "\n"
    assert cli.main([*argv, "--temperature", "0"]) == 2  # bad value: one line, exit 2
    assert "temperature" in capsys.readouterr().err
