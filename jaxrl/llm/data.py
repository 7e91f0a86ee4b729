"""Datasets from JSONL (or Parquet) files as tasks: SFT, preference and verifiable-reward rows.

``dataset_task(path, tokenizer)`` reads a file, checks every row, tokenises it once and
returns a ``DatasetTask``: a drop-in ``jaxrl.llm.tasks.Task`` whose arrays have the shared
layout (prompts left-padded ``[N, P]``, completions right-padded ``[N, C]``, masks 1 on
real tokens, a completion's EOS included) and whose ``score`` runs a host reward
(``jaxrl.llm.rewards``) through ``jax.pure_callback``, so it works inside ``jax.jit``.

Row formats, told apart by the keys of the first row and then required of every row
(other keys are ignored):

=========================  ==================  ==============================================
keys                       ``kind``            prompt → completion; reference answer
=========================  ==================  ==============================================
``prompt, completion``     verifiable          prompt → completion; answer = completion
``messages``               verifiable          all but the last (assistant) message → it
``prompt, answer``         verifiable          prompt → answer; answer = answer
``question, answer``       verifiable          GSM8K: question → answer text; the reward's
                                               reference is the text after ``#### ``
``problem, solution``      verifiable          MATH: problem → solution; the reference is
                                               the solution's last ``\\boxed{}``
``prompt, chosen,          preference          prompt → chosen (SFT) / chosen vs rejected;
rejected``                                     optional ``chosen_score``, ``rejected_score``
                                               (or ``score_chosen``, ``score_rejected``)
``chosen, rejected``       preference          whole conversations: the prompt is their
                                               shared leading messages
=========================  ==================  ==============================================

A prompt, completion, chosen or rejected may be a string or a list of
``{"role", "content"}`` messages (the conversational form). Conversational rows, and
every row when ``chat_template=True``, are rendered with the tokenizer's chat template;
other rows are encoded as plain text (the tokenizer adds its BOS). A chat completion is
the template's rendering of the whole conversation minus the prompt's, cut after its
first stop token; a plain completion ends with the tokenizer's first EOS id.

Length limits: a prompt longer than ``max_prompt_len`` tokens drops its row; a
completion longer than ``max_completion_len`` tokens (EOS included) is cut to that length
and loses its EOS. ``task.stats`` counts both.

The key names follow the usual Hugging Face conventions (TRL's dataset formats,
https://huggingface.co/docs/trl/dataset_formats; GSM8K, Cobbe et al. 2021,
https://arxiv.org/abs/2110.14168; MATH, Hendrycks et al. 2021,
https://arxiv.org/abs/2103.03874), so a downloaded dataset exported to JSONL reads as is.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.llm.datafiles import FORMATS, Row, encode_rows, read_rows, write_jsonl
from jaxrl.llm.rewards import RewardFn, make_reward
from jaxrl.llm.tasks import (
    PreferencePairs,
    Prompts,
    SFTData,
    Task,
    _check_split,
)
from jaxrl.llm.tokenizer import PretrainedTokenizer, load_tokenizer, pack

__all__ = ["FORMATS", "Row", "read_rows", "DatasetTask", "dataset_task", "write_jsonl"]


def _split_key(prompt: str | list) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


class DatasetTask(Task):
    """A task read from a file: the ``Task`` interface over tokenised rows (see the module).

    Built by ``dataset_task``. Rows come in file order (shuffling is the trainer's); the
    arrays are built once per split and cached. Hashable by identity, so it can be a
    static argument of a jitted function.

    Attributes:
        tokenizer: the ``PretrainedTokenizer``.
        format: the row format (a key of ``FORMATS``).
        stats: counts for the run log: ``rows`` (read), ``train``, ``heldout`` (kept),
            ``dropped`` (prompt over ``max_prompt_len``), ``truncated`` (rows with a
            completion cut to ``max_completion_len``).
        options: the arguments that built it (path, eval_path, reward, limits).
    """

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __init__(
        self,
        tokenizer: PretrainedTokenizer,
        fmt: str,
        rows: list[Row],
        eval_rows: list[Row] | None = None,
        *,
        reward: str | RewardFn | None = None,
        max_prompt_len: int | None = None,
        max_completion_len: int | None = None,
        heldout_share: float = 0.1,
        chat_template: bool | None = None,
        options: dict | None = None,
    ):
        def put(name, value):
            object.__setattr__(self, name, value)  # Task is a frozen dataclass

        if not tokenizer.eos_ids:
            raise ValueError("the tokenizer has no EOS token (tokenizer_config.json eos_token)")
        for name, limit in (
            ("max_prompt_len", max_prompt_len),
            ("max_completion_len", max_completion_len),
        ):
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {limit}")
        if not 0.0 <= heldout_share < 1.0:
            raise ValueError(f"heldout_share must be in [0, 1), got {heldout_share}")
        put("heldout_share", heldout_share)
        put("eos_ids", tuple(tokenizer.eos_ids))
        put("pad_id", int(tokenizer.pad_id))
        put("tokenizer", tokenizer)
        put("format", fmt)
        put("options", dict(options or {}))
        all_rows = rows + (eval_rows or [])
        encoded, texts, known = encode_rows(
            all_rows, tokenizer, chat_template, max_completion_len or 2**31
        )
        empty = next(
            (r.where for r, e in zip(all_rows, encoded, strict=True) if not e.prompt), None
        )
        if empty is not None:  # generation needs at least one real prompt token per row
            raise ValueError(f"{empty}: the prompt encodes to no tokens (an empty prompt)")
        limit = max_prompt_len or 2**31
        keep = [i for i, e in enumerate(encoded) if len(e.prompt) <= limit]
        if not keep:
            raise ValueError(
                f"{all_rows[0].where.rsplit(':', 1)[0]}: all {len(all_rows)} rows dropped: every "
                f"prompt is longer than max_prompt_len={max_prompt_len} tokens"
            )
        n_train = len(rows)
        heldout = [
            (i >= n_train)
            if eval_rows is not None
            else self.is_heldout(_split_key(all_rows[i].prompt))
            for i in range(len(all_rows))
        ]
        split = {
            "train": [i for i in keep if not heldout[i]],
            "heldout": [i for i in keep if heldout[i]],
        }
        answers = [all_rows[i].answer for i in range(len(all_rows))]
        new = sorted({a for a in answers if a not in known})
        enc = tokenizer.tokenizer.encode_batch(new, add_special_tokens=False)
        known.update(zip(new, (e.ids for e in enc), strict=True))
        answer_ids = [[*known[a], tokenizer.eos_ids[0]] if a else [] for a in answers]
        put("_rows", all_rows)
        put("_encoded", encoded)
        put("_answer_ids", answer_ids)
        put("_split", split)
        put("_prompt_text", {tuple(encoded[i].prompt): texts[i] for i in keep})
        put("_answer_text", {tuple(answer_ids[i]): answers[i] for i in keep})
        put("_prompt_len", max(len(encoded[i].prompt) for i in keep))
        longest = max(
            len(c) for i in keep for c in (encoded[i].completion, encoded[i].rejected) if c
        )
        put("_completion_len", max_completion_len or longest)
        put("_answer_len", max(1, *(len(answer_ids[i]) for i in keep)))
        put("_cache", {})
        put(
            "stats",
            {
                "rows": len(all_rows),
                "train": len(split["train"]),
                "heldout": len(split["heldout"]),
                "dropped": len(all_rows) - len(keep),
                "truncated": sum(encoded[i].truncated for i in keep),
            },
        )
        if isinstance(reward, str) or callable(reward):
            reward = make_reward(reward, tokenizer=tokenizer, max_len=self._completion_len)
        elif reward is None and self.kind == "verifiable":
            reward = make_reward("accuracy")
        put("_reward", reward)

    def __repr__(self) -> str:
        return (
            f"DatasetTask({self.options.get('path')!r}, format={self.format!r}, stats={self.stats})"
        )

    @property
    def name(self) -> str:
        return f"dataset:{self.options.get('path', '?')}"

    @property
    def kind(self) -> str:
        return "preference" if self.format == "preference" else "verifiable"

    @property
    def prompt_len(self) -> int:
        """Longest kept prompt, in tokens (both splits)."""
        return self._prompt_len

    @property
    def completion_len(self) -> int:
        """``max_completion_len`` when given, else the longest completion (EOS included)."""
        return self._completion_len

    @property
    def has_score(self) -> bool:
        """Whether ``score`` can be called: a reward was given, or the rows are verifiable."""
        return self._reward is not None

    def _indices(self, split: str, n: int | None) -> list[int]:
        _check_split(split)
        idx = self._split[split]
        if not idx:
            raise ValueError(
                f"{self.options.get('path')}: split {split!r} has no rows ({self.stats}); "
                "give eval_path or a larger heldout_share"
            )
        return idx if n is None else idx[:n]

    def _cached(self, what: str, split: str, n: int | None, build):
        key = (what, split, n)
        if key not in self._cache:
            arrays = build(self._indices(split, n))
            for a in arrays:  # shared by every caller: an in-place edit would leak
                a.flags.writeable = False
            self._cache[key] = arrays
        return self._cache[key]

    def examples(self, split: str, n: int | None = None, seed: int = 0) -> list[tuple[str, str]]:
        """``(prompt text, answer text)`` of the first ``n`` rows of ``split`` (``seed`` unused)."""
        return [
            (self._prompt_text[tuple(self._encoded[i].prompt)], self._rows[i].answer)
            for i in self._indices(split, n)
        ]

    def prompts(self, split: str, n: int | None = None, seed: int = 0) -> Prompts:
        """Prompts ``[N, P]`` and reference answers ``[N, A]`` (right-padded, EOS ended) of the
        first ``n`` rows of ``split`` in file order (``seed`` unused: order is the trainer's)."""

        def build(idx):
            p, pm = pack([self._encoded[i].prompt for i in idx], self.prompt_len, self.pad_id, True)
            a, am = pack([self._answer_ids[i] for i in idx], self._answer_len, self.pad_id, False)
            return Prompts(p, pm, a, am)

        return self._cached("prompts", split, n, build)

    def sft_data(self, split: str, n: int | None = None, seed: int = 0) -> SFTData:
        """Prompt ``[N, P]``/completion ``[N, C]`` pairs of the first ``n`` rows of ``split``
        (the chosen completion for preference rows); the completion mask is the loss mask."""

        def build(idx):
            p, pm = pack([self._encoded[i].prompt for i in idx], self.prompt_len, self.pad_id, True)
            c, cm = pack(
                [self._encoded[i].completion for i in idx], self.completion_len, self.pad_id, False
            )
            return SFTData(p, pm, c, cm)

        return self._cached("sft", split, n, build)

    def preference_pairs(self, split: str, n: int | None = None, seed: int = 0) -> PreferencePairs:
        """(prompt, chosen, rejected) of the first ``n`` rows of ``split``; ``chosen_score``/
        ``rejected_score`` ``[N]`` from the rows' fields, NaN where absent."""
        if self.kind != "preference":
            raise ValueError(
                f"{self.options.get('path')}: preference_pairs needs prompt/chosen/rejected "
                f"rows; this file has {self.format!r} rows"
            )

        def build(idx):
            enc = [self._encoded[i] for i in idx]
            p, pm = pack([e.prompt for e in enc], self.prompt_len, self.pad_id, True)
            c, cm = pack([e.completion for e in enc], self.completion_len, self.pad_id, False)
            r, rm = pack([e.rejected for e in enc], self.completion_len, self.pad_id, False)
            cs = np.asarray([self._rows[i].chosen_score for i in idx], np.float32)
            rs = np.asarray([self._rows[i].rejected_score for i in idx], np.float32)
            return PreferencePairs(p, pm, c, cm, r, rm, cs, rs)

        return self._cached("pairs", split, n, build)

    def host_score(
        self, prompt_tokens, prompt_mask, answer, answer_mask, tokens, mask
    ) -> np.ndarray:
        """The reward of token completions on the host: decodes, then calls the reward fn.

        Prompt and answer texts are looked up by their ids (the text as read, or the chat
        template's rendering), decoded when unknown; completions are decoded without
        special tokens from the tokens under ``mask``. Returns ``[B]`` float32.
        """
        dec = self.tokenizer.tokenizer.decode_batch

        def texts(tok, m, table):
            # One host copy per array: the callback's arguments may be jax Arrays, and
            # slicing those row by row costs a dispatch per row (50x the reward itself).
            tok, m = np.asarray(tok), np.asarray(m)
            rows = [t[k > 0].tolist() for t, k in zip(tok, m, strict=True)]
            out = [table.get(tuple(r)) for r in rows]
            missing = [i for i, t in enumerate(out) if t is None]
            for i, t in zip(missing, dec([rows[i] for i in missing]), strict=True):
                out[i] = t
            return out

        prompts = texts(prompt_tokens, prompt_mask, self._prompt_text)
        answers = texts(answer, answer_mask, self._answer_text)
        completions = texts(tokens, mask, {})
        return np.asarray(self._reward(prompts, completions, answers), np.float32)

    def score(self, prompts: Prompts, completion_tokens, completion_mask) -> jax.Array:
        """The reward of completions ``[B, C']``; works under ``jax.jit`` (a host callback).

        Returns:
            ``[B]`` float32 from the task's reward (``jaxrl.llm.rewards``).
        """
        if self._reward is None:
            raise ValueError(
                f"{self.options.get('path')}: {self.format} rows have no reward; pass "
                "reward='SPEC' (or a function) to dataset_task to score completions"
            )
        shape = jax.ShapeDtypeStruct((completion_tokens.shape[0],), jnp.float32)
        return jax.pure_callback(
            self.host_score,
            shape,
            prompts.tokens,
            prompts.mask,
            prompts.answer,
            prompts.answer_mask,
            completion_tokens,
            completion_mask,
            vmap_method="sequential",
        )


def dataset_task(
    path: str,
    tokenizer: PretrainedTokenizer | str,
    *,
    eval_path: str | None = None,
    reward: str | RewardFn | None = None,
    max_prompt_len: int | None = None,
    max_completion_len: int | None = None,
    heldout_share: float = 0.1,
    chat_template: bool | None = None,
) -> DatasetTask:
    """Reads a dataset file into a ``DatasetTask`` (see the module for the row formats).

    Args:
        path: a ``.jsonl`` file (or ``.parquet`` with pyarrow installed).
        tokenizer: a ``PretrainedTokenizer`` or a model directory holding one.
        eval_path: a file of the same format for the ``"heldout"`` split; without it the
            held-out split is the rows whose prompt hashes into ``heldout_share``.
        reward: a ``jaxrl.llm.rewards.make_reward`` spec or function for ``score``
            (default ``"accuracy"`` for verifiable rows, which for a non-numeric reference
            is an exact text match; none for preference rows, whose ``score`` then raises
            and ``has_score`` is False).
        max_prompt_len: rows whose prompt has more tokens are dropped (None: no limit).
        max_completion_len: completions with more tokens (EOS included) are cut, and this
            is the task's ``completion_len`` (None: no cut; the longest completion).
        heldout_share: share of prompts hashed into the held-out split.
        chat_template: None renders only conversational rows with the chat template, True
            every row (a plain prompt becomes one user message), False none.

    Raises:
        ValueError: one line naming the file, line and field of a malformed row.
    """
    if isinstance(tokenizer, str):
        tokenizer = load_tokenizer(tokenizer)
    fmt, rows = read_rows(path)
    eval_rows = None
    if eval_path is not None:
        eval_fmt, eval_rows = read_rows(eval_path)
        if eval_fmt != fmt:
            raise ValueError(f"{eval_path}: rows have format {eval_fmt!r}, but {path} has {fmt!r}")
    limits = dict(
        max_prompt_len=max_prompt_len,
        max_completion_len=max_completion_len,
        heldout_share=heldout_share,
        chat_template=chat_template,
    )
    named = (
        reward if isinstance(reward, str) or reward is None else getattr(reward, "__name__", "fn")
    )
    options = dict(path=path, eval_path=eval_path, reward=named, **limits)
    return DatasetTask(tokenizer, fmt, rows, eval_rows, reward=reward, options=options, **limits)
