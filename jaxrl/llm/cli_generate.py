"""``jaxrl llm generate --model DIR --prompt TEXT [--chat] ...``: sample from a pretrained model.

Loads a Hugging Face model directory and its tokenizer, encodes each ``--prompt``
(through the chat template with ``--chat``), samples with :func:`jaxrl.llm.generate`
and prints one completion per prompt. Bad input (a missing directory, an unsupported
model, a bad sampling value) raises ``ValueError`` with one line; the CLI turns it into
``error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import os

import jax

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``generate`` options to ``parser`` (which already has ``--seed``)."""
    g = parser.add_argument_group("generate (jaxrl llm generate)")
    g.add_argument("--model", default=None, help="Hugging Face model directory")
    g.add_argument("--prompt", action="append", default=None, help="prompt text (repeatable)")
    g.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    g.add_argument("--system", default=None, help="system message (with --chat)")
    g.add_argument("--max-new-tokens", type=int, default=64, help="tokens to sample")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature τ > 0")
    g.add_argument("--top-k", type=int, default=0, help="keep the k most likely (0: all)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus mass (1: all)")
    g.add_argument("--greedy", action="store_true", help="most likely token at each step")
    g.add_argument("--dtype", default="float32", help="float32 or bfloat16")


def run(args) -> int:
    """Loads, samples and prints; returns the exit status (0)."""
    from jaxrl.llm.checkpoint import load_pretrained
    from jaxrl.llm.generate import GenerationConfig, generate
    from jaxrl.llm.tokenizer import load_tokenizer

    if not args.model:
        raise ValueError("jaxrl llm generate: --model DIR is required")
    if not os.path.isdir(args.model):
        raise ValueError(f"--model {args.model}: no such directory")
    if not args.prompt:
        raise ValueError("jaxrl llm generate: --prompt TEXT is required")
    tokenizer = load_tokenizer(args.model)
    gen_config = GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        greedy=args.greedy,
        eos_id=tokenizer.eos_ids or (-1,),
        pad_id=tokenizer.pad_id,
    )
    model_config, params = load_pretrained(args.model, dtype=args.dtype)
    if args.chat:
        texts = []
        for prompt in args.prompt:
            messages = [{"role": "user", "content": prompt}]
            if args.system:
                messages.insert(0, {"role": "system", "content": args.system})
            texts.append(tokenizer.apply_chat_template(messages, add_generation_prompt=True))
        tokens, mask = tokenizer.encode_batch(texts, add_special_tokens=False)
    else:
        tokens, mask = tokenizer.encode_batch(args.prompt)
    need = tokens.shape[1] + args.max_new_tokens
    if need > model_config.max_len:
        raise ValueError(
            f"prompt ({tokens.shape[1]} tokens) + --max-new-tokens ({args.max_new_tokens}) "
            f"exceeds the model's max_position_embeddings ({model_config.max_len})"
        )
    out = generate(
        params, model_config, gen_config, tokens, mask, jax.random.PRNGKey(args.seed or 0)
    )
    for row, row_mask in zip(jax.device_get(out.tokens), jax.device_get(out.mask), strict=True):
        print(tokenizer.decode(row[row_mask > 0]))
    return 0
