"""Shared fixtures of the LLM tests: one tiny model and one batch of mixed-length prompts."""

import jax
import numpy as np
import pytest

from jaxrl.llm import ModelConfig, init_params, make_task
from jaxrl.llm.tasks import TOKENIZER

TINY = ModelConfig(
    vocab_size=TOKENIZER.vocab_size, max_len=32, d_model=32, num_heads=4, num_layers=2, d_ff=64
)


def pad_more(tokens, mask, left: int = 0, right: int = 0):
    """Adds ``left`` padding columns before and ``right`` after ``[B, L]`` arrays."""
    widths = ((0, 0), (left, right))
    return np.pad(np.asarray(tokens), widths), np.pad(np.asarray(mask), widths)


@pytest.fixture
def xla_optimized():
    """XLA's optimisations back on for one test whose time goes to running its program, not
    to compiling it (the reward model's 800 updates: 29 CPU s instead of 35)."""
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture(scope="session")
def tiny_params():
    return init_params(TINY, jax.random.PRNGKey(0))


@pytest.fixture(scope="session")
def prompts():
    # addition prompts have 3 to 7 real tokens: several amounts of left padding per batch
    return make_task("addition").prompts("train", 8, seed=0)


# --- pretrained (Hugging Face) models: tiny, random, written offline -----------------------

HF_ARCHS = ("llama", "qwen2", "qwen3")


def left_padded_batch(vocab: int, seed: int = 0):
    """Three rows of 10 columns with 0, 3 and 6 columns of left padding."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(5, vocab, (3, 10))
    mask = np.ones((3, 10), np.int32)
    mask[1, :3] = 0
    mask[2, :6] = 0
    return np.where(mask > 0, tokens, 0).astype(np.int32), mask


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory):
    """``{arch: (directory, transformers model)}``: tiny random Llama (llama3 rope scaling,
    tied embeddings), Qwen2 (q/k/v biases) and Qwen3 (q/k norm, head_dim ≠ D/H), GQA in all,
    with the weights perturbed so norms and biases are not trivial; each directory also
    holds the tiny BPE tokenizer and chat template."""
    import torch
    import transformers

    from jaxrl.llm.testing import tiny_tokenizer, write_tokenizer

    tokenizer = tiny_tokenizer()
    common = dict(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=[2, 4],
        pad_token_id=0,
    )
    llama3 = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    }
    configs = {
        "llama": transformers.LlamaConfig(
            **common, rope_scaling=llama3, rope_theta=500000.0, tie_word_embeddings=True
        ),
        "qwen2": transformers.Qwen2Config(**common),
        "qwen3": transformers.Qwen3Config(**common, head_dim=16),
    }
    torch.manual_seed(0)
    out = {}
    for arch, config in configs.items():
        model = transformers.AutoModelForCausalLM.from_config(config).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        path = str(tmp_path_factory.mktemp(arch))
        model.save_pretrained(path)
        write_tokenizer(path, tokenizer)
        out[arch] = (path, model)
    return out


def hf_logits(model, tokens, mask):
    """transformers logits with positions counting real tokens (as jaxrl's)."""
    import torch

    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(tokens, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            position_ids=torch.tensor(positions, dtype=torch.long),
        )
    return out.logits.numpy()
