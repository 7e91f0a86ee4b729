"""Tiny Hugging Face model directories made offline: for tests, examples and the README.

``tiny_model_dir(path)`` writes a randomly initialised Llama/Qwen model
(``config.json``, ``model.safetensors``), a byte-level BPE tokenizer trained on a few
sentences (``tokenizer.json``), a ChatML-style chat template
(``tokenizer_config.json``) and stop tokens (``generation_config.json``): the same
files a downloaded model directory holds, in a few kilobytes.
"""

from __future__ import annotations

import json
import os
import re

import jax
import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

from jaxrl.llm.checkpoint import save_pretrained
from jaxrl.llm.transformer import ModelConfig, init_params

__all__ = [
    "tiny_model_config",
    "tiny_tokenizer",
    "tiny_model_dir",
    "CHAT_TEMPLATE",
    "bpe_tokenizer",
    "write_tokenizer",
    "arithmetic_rows",
    "arithmetic_score",
]

SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Reinforcement learning from human feedback trains a policy on a learned reward.",
    "Two plus three is five; seven times six is forty-two.",
    "A language model predicts the next token from the tokens before it.",
    "Hello! How are you today? I am fine, thank you.",
]


def tiny_tokenizer(vocab_size: int = 320) -> tokenizers.Tokenizer:
    """A byte-level BPE tokenizer with ``SPECIAL_TOKENS`` (ids 0–4) that prepends ``<|bos|>``."""
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B", special_tokens=[("<|bos|>", 1)]
    )
    return tok


def bpe_tokenizer(corpus: list[str], vocab_size: int = 384) -> tokenizers.Tokenizer:
    """A byte-level BPE tokenizer trained on ``corpus``, digits split one per token.

    Special tokens take ids 0–4 (pad, bos, ``<|im_start|>``, ``<|im_end|>``, eos: the
    end-of-turn token is id 3, the id a toy task's EOS has) and every encoding starts with
    ``<|bos|>``, as in :func:`tiny_tokenizer`. Splitting digits before the byte-level step
    (as Llama 3 and Qwen do) keeps numbers out of the merges, so ``71`` is ``7``, ``1``.

    Args:
        corpus: training texts.
        vocab_size: size of the vocabulary, the 256 byte symbols and specials included.
    """
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|pad|>", "<|bos|>", "<|im_start|>", "<|im_end|>", "<|eos|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B", special_tokens=[("<|bos|>", 1)]
    )
    return tok


# Phrasings of the arithmetic questions: the operands are the only digits in a question.
_QUESTIONS = (
    "What is {a} + {b}?",
    "What is {a} plus {b}?",
    "Add {a} and {b}.",
    "What is the sum of {a} and {b}?",
)


def arithmetic_rows(n: int | None, seed: int, max_operand: int = 99) -> list[dict]:
    """Verifiable rows ``{"prompt": "What is 23 + 48?", "answer": "#### 71"}``.

    Operands are in ``[0, max_operand]``; the question's phrasing is one of four. The
    answer is written GSM8K-style, the number after ``####``.

    Args:
        n: rows drawn uniformly (with repeats); None: every distinct question once, in an
            order shuffled by ``seed`` (``4 · (max_operand + 1)²`` rows).
        seed: numpy seed.
        max_operand: largest operand.
    """
    rng = np.random.default_rng(seed)
    if n is None:
        every = [
            (a, b, q)
            for a in range(max_operand + 1)
            for b in range(max_operand + 1)
            for q in range(len(_QUESTIONS))
        ]
        picks = [every[i] for i in rng.permutation(len(every))]
    else:
        picks = [
            (*(int(x) for x in rng.integers(0, max_operand + 1, size=2)), int(rng.integers(4)))
            for _ in range(n)
        ]
    return [
        {"prompt": _QUESTIONS[q].format(a=a, b=b), "answer": f"#### {a + b}"} for a, b, q in picks
    ]


def arithmetic_score(prompts: list[str], completions: list[str], answers: list[str]) -> np.ndarray:
    """A reward (``module:function`` form) that needs no reference answer: 1 where the
    number after the completion's ``####`` is the sum of the prompt's last two integers.

    Args:
        prompts: prompt texts (chat template text allowed: it holds no digits).
        completions: completion texts.
        answers: reference answers (unused: the prompt holds the truth).

    Returns:
        ``[B]`` float32 scores in {0, 1}.
    """
    del answers
    out = np.zeros(len(prompts), np.float32)
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        operands = re.findall(r"\d+", prompt)[-2:]
        said = re.search(r"####\s*(-?\d+)", completion)
        if len(operands) == 2 and said:
            out[i] = float(int(said.group(1)) == int(operands[0]) + int(operands[1]))
    return out


def tiny_model_config(model_type: str = "llama", vocab_size: int = 320, **changes) -> ModelConfig:
    """A 2-layer, width-32 config of ``model_type`` (llama, qwen2, qwen3) with GQA."""
    base = dict(
        vocab_size=vocab_size,
        max_len=128,
        d_model=32,
        num_heads=4,
        num_kv_heads=2,
        num_layers=2,
        d_ff=64,
        model_type=model_type,
        head_dim=8,
        qkv_bias=model_type == "qwen2",
        qk_norm=model_type == "qwen3",
        tie_embeddings=model_type == "llama",
    )
    return ModelConfig(**{**base, **changes})


def write_tokenizer(path: str, tokenizer: tokenizers.Tokenizer) -> None:
    """Writes ``tokenizer.json``, ``tokenizer_config.json`` and ``generation_config.json``."""
    os.makedirs(path, exist_ok=True)
    tokenizer.save(os.path.join(path, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|bos|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|pad|>",
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": 128,
    }
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    eos = [tokenizer.token_to_id("<|eos|>"), tokenizer.token_to_id("<|im_end|>")]
    with open(os.path.join(path, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": eos, "pad_token_id": 0}, f, indent=2)


def tiny_model_dir(path: str, model_type: str = "llama", seed: int = 0, **changes) -> str:
    """Writes a random tiny model and its tokenizer to ``path``; returns ``path``.

    Args:
        path: output directory.
        model_type: llama, qwen2 or qwen3.
        seed: initialisation seed.
        **changes: ``ModelConfig`` fields to override (e.g. ``num_layers=4``).
    """
    tokenizer = tiny_tokenizer()
    config = tiny_model_config(model_type, tokenizer.get_vocab_size(), **changes)
    params = init_params(config, jax.random.PRNGKey(seed))
    save_pretrained(path, config, params)
    write_tokenizer(path, tokenizer)
    return path


def main(argv: list[str] | None = None) -> None:
    """``python jaxrl/llm/testing.py --out DIR [--model-type qwen3]``: writes a tiny model
    (one layer under ``JAXRL_QUICK=1``: the README's stages on it compile about a third less)."""
    import argparse

    parser = argparse.ArgumentParser(description="write a tiny random model directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--model-type", default="llama", choices=("llama", "qwen2", "qwen3"))
    args = parser.parse_args(argv)
    from jaxrl.cli_checks import _quick

    changes = {}
    if _quick():  # tests/test_docs.py: every stage, compiled small
        changes["num_layers"] = 1
        print("JAXRL_QUICK=1: num_layers=1")
    print(tiny_model_dir(args.out, args.model_type, **changes))


if __name__ == "__main__":
    main()
