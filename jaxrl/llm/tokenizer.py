"""Tokenizers: jaxrl's character tokenizer, and a pretrained model's with its chat template.

``TOKENIZER`` is the character tokenizer of the code-made tasks (:mod:`jaxrl.llm.tasks`)
and of the tiny from-scratch model. For a pretrained model (no torch or transformers):

``load_tokenizer(path)`` reads ``tokenizer.json`` (the ``tokenizers`` library),
``tokenizer_config.json`` (special tokens, the chat template; or ``chat_template.jinja``)
and ``generation_config.json`` (stop tokens). The chat template is rendered with jinja2
the way transformers renders it: a sandboxed environment with ``trim_blocks`` and
``lstrip_blocks``, the ``tojson`` filter, ``raise_exception`` and ``strftime_now``.
"""

from __future__ import annotations

import datetime
import json
import os

import jinja2
import jinja2.ext
import jinja2.sandbox
import numpy as np
import tokenizers

__all__ = [
    "PAD",
    "BOS",
    "SEP",
    "EOS",
    "Tokenizer",
    "TOKENIZER",
    "PretrainedTokenizer",
    "load_tokenizer",
]

PAD, BOS, SEP, EOS = 0, 1, 2, 3
_SPECIALS = ("<pad>", "<bos>", "<sep>", "<eos>")
_CHARS = "0123456789+-*=<>,. abcdefghijklmnopqrstuvwxyz"


class Tokenizer:
    """Character tokenizer: ids 0–3 are pad, bos, sep, eos; then one id per character."""

    def __init__(self, chars: str = _CHARS):
        self.chars = chars
        self._ids = {c: i + len(_SPECIALS) for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        return len(_SPECIALS) + len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        try:
            return [self._ids[c] for c in text]
        except KeyError as e:
            raise ValueError(
                f"text {text!r} has character {e.args[0]!r} outside the "
                f"tokenizer's characters {self.chars!r}"
            ) from None

    def decode(self, ids) -> str:
        """Text of ``ids``: stops at the first EOS, skips pad/bos/sep."""
        out = []
        for i in np.asarray(ids).tolist():
            if i == EOS:
                break
            if i >= len(_SPECIALS):
                out.append(self.chars[i - len(_SPECIALS)])
        return "".join(out)


TOKENIZER = Tokenizer()


def pack(rows: list[list[int]], width: int, pad: int, left: bool):
    """``(tokens [N, width], mask [N, width])`` int32 of id lists, left- or right-padded."""
    tokens = np.full((len(rows), width), pad, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        if len(row) > width:
            raise ValueError(f"sequence of length {len(row)} exceeds width {width}")
        if row:
            sl = slice(width - len(row), width) if left else slice(0, len(row))
            tokens[i, sl] = row
            mask[i, sl] = 1
    return tokens, mask


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None


def _token_text(value) -> str | None:
    """A special token as saved by transformers: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        return value.get("content")
    return value


def _ids(value) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def _raise(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


class PretrainedTokenizer:
    """Text ↔ ids with a model's own tokenizer, special tokens and chat template.

    Attributes:
        tokenizer: the ``tokenizers.Tokenizer``.
        chat_template: jinja2 source, or None.
        special_tokens: ``{"bos_token": "<s>", ...}`` from tokenizer_config.json.
        bos_id: id of the BOS token, or None.
        eos_ids: stop tokens: generation_config.json's ``eos_token_id`` (an int or a
            list) and the tokenizer's EOS, in that order, without repeats.
        pad_id: the padding id (pad token, else the first stop token, else 0).
    """

    def __init__(self, tokenizer: tokenizers.Tokenizer, config: dict, generation: dict):
        self.tokenizer = tokenizer
        template = config.get("chat_template")
        if isinstance(template, list):  # named templates: take "default"
            template = {t.get("name"): t.get("template") for t in template}.get("default")
        self.chat_template = template
        self.special_tokens = {
            k: _token_text(v)
            for k, v in config.items()
            if k.endswith("_token") and _token_text(v) is not None
        }
        self.bos_id = self.token_id(self.special_tokens.get("bos_token"))
        eos = self.token_id(self.special_tokens.get("eos_token"))
        ids = [*_ids(generation.get("eos_token_id")), *_ids(eos)]
        self.eos_ids = tuple(dict.fromkeys(i for i in ids if i is not None))
        pad = self.token_id(self.special_tokens.get("pad_token"))
        pad = pad if pad is not None else generation.get("pad_token_id")
        self.pad_id = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def token_id(self, token: str | None) -> int | None:
        """The id of one token string (None when absent)."""
        return None if token is None else self.tokenizer.token_to_id(token)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` (the tokenizer's BOS/EOS rules when ``add_special_tokens``)."""
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Text of ``ids`` (a list or 1-D array)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def apply_chat_template(
        self, messages: list[dict], add_generation_prompt: bool = True, tokenize: bool = False
    ):
        """Renders ``messages`` (``[{"role": ..., "content": ...}, ...]``) with the chat template.

        Returns:
            The text, or its ids when ``tokenize`` (encoded without adding special tokens:
            the template writes them itself, as transformers does).
        """
        if not self.chat_template:
            raise ValueError("this tokenizer has no chat_template (tokenizer_config.json)")
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
        text = env.from_string(self.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **self.special_tokens
        )
        return self.encode(text, add_special_tokens=False) if tokenize else text

    def encode_batch(
        self, texts: list[str], add_special_tokens: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded ``(tokens [B, P], mask [B, P])`` int32 arrays of several texts."""
        rows = [self.encode(t, add_special_tokens) for t in texts]
        width = max(1, *(len(r) for r in rows))
        tokens = np.full((len(rows), width), self.pad_id, np.int32)
        mask = np.zeros((len(rows), width), np.int32)
        for i, row in enumerate(rows):
            if row:
                tokens[i, width - len(row) :] = row
                mask[i, width - len(row) :] = 1
        return tokens, mask


def load_tokenizer(path: str) -> PretrainedTokenizer:
    """Reads the tokenizer of a Hugging Face model directory.

    Args:
        path: directory with ``tokenizer.json`` (and optionally ``tokenizer_config.json``,
            ``chat_template.jinja``, ``generation_config.json``).

    Returns:
        A ``PretrainedTokenizer``.
    """
    file = os.path.join(path, "tokenizer.json")
    if not os.path.exists(file):
        raise ValueError(f"{path}: no tokenizer.json (a fast tokenizer is required)")
    try:
        tokenizer = tokenizers.Tokenizer.from_file(file)
    except Exception as e:
        raise ValueError(f"{file}: not a readable tokenizer ({e})") from None
    config = _read_json(os.path.join(path, "tokenizer_config.json"))
    template_file = os.path.join(path, "chat_template.jinja")
    if os.path.exists(template_file):
        with open(template_file) as f:
            config["chat_template"] = f.read()
    generation = _read_json(os.path.join(path, "generation_config.json"))
    return PretrainedTokenizer(tokenizer, config, generation)
