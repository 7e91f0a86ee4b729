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


@pytest.fixture(scope="session")
def tiny_params():
    return init_params(TINY, jax.random.PRNGKey(0))


@pytest.fixture(scope="session")
def prompts():
    # addition prompts have 3 to 7 real tokens: several amounts of left padding per batch
    return make_task("addition").prompts("train", 8, seed=0)
