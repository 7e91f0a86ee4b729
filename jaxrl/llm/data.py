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
"""

from __future__ import annotations

import functools
import json
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.llm.rewards import RewardFn, make_reward
from jaxrl.llm.tasks import (
    PreferencePairs,
    Prompts,
    SFTData,
    Task,
    _check_split,
)
from jaxrl.llm.tokenizer import PretrainedTokenizer, load_tokenizer

__all__ = ["FORMATS", "Row", "read_rows", "DatasetTask", "dataset_task", "write_jsonl"]

# format name -> required keys, in the order they are checked
FORMATS: dict[str, tuple[str, ...]] = {
    "preference": ("chosen", "rejected"),
    "messages": ("messages",),
    "prompt/completion": ("prompt", "completion"),
    "prompt/answer": ("prompt", "answer"),
    "question/answer": ("question", "answer"),
    "problem/solution": ("problem", "solution"),
}


class Row(NamedTuple):
    """One checked row. ``prompt``/``completion``/``rejected``: a string or messages."""

    where: str  # "path:line"
    prompt: str | list
    completion: str | list  # the SFT target (chosen, for preference rows)
    rejected: str | list | None  # preference rows only
    answer: str  # reference answer text given to the reward ("" for preference rows)
    chosen_score: float  # NaN when the row has none
    rejected_score: float


def _iter_records(path: str):
    """``(line, dict)`` of each row of a JSONL or Parquet file."""
    if path.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(
                f"{path}: reading Parquet needs pyarrow (pip install pyarrow)"
            ) from None
        for i, record in enumerate(pq.read_table(path).to_pylist()):
            yield i + 1, record
        return
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{path}:{i}: not valid JSON ({e.msg} at column {e.colno})"
                ) from None
            yield i, record


def _type_name(value) -> str:
    return type(value).__name__ if value is not None else "null"


def _text_or_messages(value, where: str, field: str, allow_messages: bool = True):
    if isinstance(value, str):
        return value
    if allow_messages and isinstance(value, list):
        for j, m in enumerate(value):
            if not isinstance(m, dict):
                raise ValueError(
                    f"{where}: field '{field}[{j}]' must be a {{role, content}} object, "
                    f"got {_type_name(m)}"
                )
            for key in ("role", "content"):
                if not isinstance(m.get(key), str):
                    raise ValueError(
                        f"{where}: field '{field}[{j}].{key}' must be a string, got "
                        f"{_type_name(m.get(key))} {str(m.get(key))[:40]!r}"
                    )
        if not value:
            raise ValueError(f"{where}: field '{field}' is an empty message list")
        return value
    allowed = "a string or a list of messages" if allow_messages else "a string"
    raise ValueError(
        f"{where}: field '{field}' must be {allowed}, got {_type_name(value)} {str(value)[:40]!r}"
    )


def _score(record: dict, key: str, where: str) -> float:
    value = record.get(key)
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: field '{key}' must be a number, got {_type_name(value)}")
    return float(value)


def _preference_row(record: dict, where: str) -> Row:
    chosen = _text_or_messages(record["chosen"], where, "chosen")
    rejected = _text_or_messages(record["rejected"], where, "rejected")
    scores = [
        _score(record, next((k for k in keys if k in record), keys[0]), where)
        for keys in (("chosen_score", "score_chosen"), ("rejected_score", "score_rejected"))
    ]
    whole = isinstance(chosen, list) and isinstance(rejected, list)
    if whole and ("prompt" not in record or any(m["role"] != "assistant" for m in chosen)):
        # whole conversations (the implicit-prompt form): the prompt is their shared start
        k = 0
        while k < min(len(chosen), len(rejected)) - 1 and chosen[k] == rejected[k]:
            k += 1
        if k == 0:
            raise ValueError(
                f"{where}: fields 'chosen' and 'rejected' share no prompt messages and the "
                "row has no 'prompt'"
            )
        return Row(where, chosen[:k], chosen[k:], rejected[k:], "", *scores)
    if "prompt" not in record:
        raise ValueError(
            f"{where}: field 'prompt' is missing (needed unless chosen/rejected are whole "
            "conversations)"
        )
    prompt = _text_or_messages(record["prompt"], where, "prompt")
    return Row(where, prompt, chosen, rejected, "", *scores)


def _row(fmt: str, record: dict, where: str) -> Row:
    for key in FORMATS[fmt]:
        if key not in record:
            raise ValueError(
                f"{where}: field '{key}' is missing (format {fmt!r}, from the first row's keys)"
            )
    nan = float("nan")
    if fmt == "messages":
        messages = _text_or_messages(record["messages"], where, "messages")
        if isinstance(messages, str) or messages[-1]["role"] != "assistant":
            raise ValueError(
                f"{where}: field 'messages' must be a message list ending with an "
                f"'assistant' message (the completion)"
            )
        last = messages[-1]
        return Row(where, messages[:-1], [last], None, last["content"], nan, nan)
    if fmt == "preference":
        return _preference_row(record, where)
    if fmt in ("question/answer", "problem/solution"):
        key = fmt.split("/")[0]
        prompt = _text_or_messages(record[key], where, key, allow_messages=False)
    else:
        prompt = _text_or_messages(record["prompt"], where, "prompt")
    target_key = fmt.split("/")[1] if "/" in fmt else "completion"
    target = _text_or_messages(record[target_key], where, target_key)
    answer = target if isinstance(target, str) else target[-1]["content"]
    return Row(where, prompt, target, None, answer, nan, nan)


def read_rows(path: str) -> tuple[str, list[Row]]:
    """Reads and checks every row of a JSONL (or Parquet) file.

    Returns:
        ``(format, rows)``: the format name (a key of ``FORMATS``) and the rows in file order.

    Raises:
        ValueError: ``"path:LINE: ..."`` for bad JSON, a row that is not an object, a
            missing or mistyped field; ``"path: ..."`` for a missing or empty file.
    """
    fmt, rows = None, []
    for line, record in _iter_records(path):
        where = f"{path}:{line}"
        if not isinstance(record, dict):
            raise ValueError(f"{where}: a row must be a JSON object, got {_type_name(record)}")
        if fmt is None:
            fmt = next((f for f, keys in FORMATS.items() if set(keys) <= set(record)), None)
            if fmt is None:
                known = "; ".join(", ".join(k) for k in FORMATS.values())
                raise ValueError(
                    f"{where}: cannot tell the row format from keys {sorted(record)}; "
                    f"expected one of: {known}"
                )
        rows.append(_row(fmt, record, where))
    if not rows:
        raise ValueError(f"{path}: empty file (no rows)")
    return fmt, rows


# --- tokenisation ---------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _compiled_template(source: str):
    # PretrainedTokenizer.apply_chat_template compiles the template on every call (~4 ms);
    # a dataset renders it twice per row, so compile once with the same environment.
    import jinja2.ext
    import jinja2.sandbox

    from jaxrl.llm import tokenizer as tk

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tk._tojson
    env.globals["raise_exception"] = tk._raise
    env.globals["strftime_now"] = lambda fmt: tk.datetime.datetime.now().strftime(fmt)
    return env.from_string(source)


def _render(tok: PretrainedTokenizer, messages: list, add_generation_prompt: bool) -> str:
    return _compiled_template(tok.chat_template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, **tok.special_tokens
    )


def _as_messages(x, role: str) -> list:
    return x if isinstance(x, list) else [{"role": role, "content": x}]


class _Encoded(NamedTuple):
    prompt: list[int]
    completion: list[int]
    rejected: list[int] | None
    truncated: bool


def _encode_rows(
    rows: list[Row], tok: PretrainedTokenizer, chat_template: bool | None, max_completion: int
) -> tuple[list[_Encoded], list[str], dict[str, list[int]]]:
    """Token ids of every row (completions cut to ``max_completion``), the prompt texts and
    ``{completion text: ids}`` (before the EOS and the cut)."""
    stop, eos = set(tok.eos_ids), tok.eos_ids[0]
    prompt_texts, specials, completion_texts, cut_at_stop = [], [], [], []
    for r in rows:
        conversational = any(isinstance(x, list) for x in (r.prompt, r.completion, r.rejected))
        if conversational and chat_template is False:
            raise ValueError(f"{r.where}: a row holds a message list but chat_template=False")
        chat = bool(chat_template) or conversational
        if chat and not tok.chat_template:
            raise ValueError(
                f"{r.where}: a conversational row needs a chat template, and the tokenizer "
                "has none (tokenizer_config.json 'chat_template' or chat_template.jinja)"
            )
        if chat:
            messages = _as_messages(r.prompt, "user")
            text = _render(tok, messages, add_generation_prompt=True)
            for target in (r.completion, r.rejected):
                if target is None:
                    continue
                full = _render(tok, messages + _as_messages(target, "assistant"), False)
                completion_texts.append(
                    full[len(text) :]
                    if full.startswith(text)
                    else "".join(m["content"] for m in _as_messages(target, "assistant"))
                )
        else:
            text = r.prompt
            completion_texts += [t for t in (r.completion, r.rejected) if t is not None]
        prompt_texts.append(text)
        specials.append(not chat)
        cut_at_stop.append(chat)
    plain = [i for i, s in enumerate(specials) if s]
    templated = [i for i, s in enumerate(specials) if not s]
    prompt_ids: list[list[int]] = [[] for _ in rows]
    for idx, add in ((plain, True), (templated, False)):
        enc = tok.tokenizer.encode_batch([prompt_texts[i] for i in idx], add_special_tokens=add)
        for i, e in zip(idx, enc, strict=True):
            prompt_ids[i] = e.ids
    completion_ids = [
        e.ids for e in tok.tokenizer.encode_batch(completion_texts, add_special_tokens=False)
    ]
    known = dict(zip(completion_texts, completion_ids, strict=True))  # reused for answers
    completions = iter(completion_ids)

    def finish(ids: list[int], chat: bool) -> tuple[list[int], bool]:
        cut = next((j for j, t in enumerate(ids) if t in stop), None) if chat else None
        ids = ids[: cut + 1] if cut is not None else [*ids, eos]
        return (ids[:max_completion], True) if len(ids) > max_completion else (ids, False)

    out = []
    for r, p, chat in zip(rows, prompt_ids, cut_at_stop, strict=True):
        c, cut_c = finish(next(completions), chat)
        rej, cut_r = finish(next(completions), chat) if r.rejected is not None else (None, False)
        out.append(_Encoded(p, c, rej, cut_c or cut_r))
    return out, prompt_texts, known


def _pack(rows: list[list[int]], width: int, pad: int, left: bool):
    tokens = np.full((len(rows), width), pad, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        if row:
            sl = slice(width - len(row), width) if left else slice(0, len(row))
            tokens[i, sl] = row
            mask[i, sl] = 1
    return tokens, mask


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
        put("heldout_share", heldout_share)
        put("eos_ids", tuple(tokenizer.eos_ids))
        put("pad_id", int(tokenizer.pad_id))
        put("tokenizer", tokenizer)
        put("format", fmt)
        put("options", dict(options or {}))
        all_rows = rows + (eval_rows or [])
        encoded, texts, known = _encode_rows(
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
        """Whether ``score`` can be called (a reward spec was given or the task is verifiable)."""
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
            self._cache[key] = build(self._indices(split, n))
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
            p, pm = _pack(
                [self._encoded[i].prompt for i in idx], self.prompt_len, self.pad_id, True
            )
            a, am = _pack([self._answer_ids[i] for i in idx], self._answer_len, self.pad_id, False)
            return Prompts(p, pm, a, am)

        return self._cached("prompts", split, n, build)

    def sft_data(self, split: str, n: int | None = None, seed: int = 0) -> SFTData:
        """Prompt ``[N, P]``/completion ``[N, C]`` pairs of the first ``n`` rows of ``split``
        (the chosen completion for preference rows); the completion mask is the loss mask."""

        def build(idx):
            p, pm = _pack(
                [self._encoded[i].prompt for i in idx], self.prompt_len, self.pad_id, True
            )
            c, cm = _pack(
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
            p, pm = _pack([e.prompt for e in enc], self.prompt_len, self.pad_id, True)
            c, cm = _pack([e.completion for e in enc], self.completion_len, self.pad_id, False)
            r, rm = _pack([e.rejected for e in enc], self.completion_len, self.pad_id, False)
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
            rows = [np.asarray(t)[np.asarray(k) > 0].tolist() for t, k in zip(tok, m, strict=True)]
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
                f"{self.options.get('path')}: this preference dataset has no reward; pass "
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
            (default ``"accuracy"`` for verifiable rows, none for preference rows).
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
    options = dict(
        path=path,
        eval_path=eval_path,
        reward=reward
        if isinstance(reward, str) or reward is None
        else getattr(reward, "__name__", "fn"),
        max_prompt_len=max_prompt_len,
        max_completion_len=max_completion_len,
        heldout_share=heldout_share,
        chat_template=chat_template,
    )
    return DatasetTask(
        tokenizer,
        fmt,
        rows,
        eval_rows,
        reward=reward,
        max_prompt_len=max_prompt_len,
        max_completion_len=max_completion_len,
        heldout_share=heldout_share,
        chat_template=chat_template,
        options=options,
    )


def write_jsonl(task: Task, path: str, split: str = "train", n: int = 1000, seed: int = 0) -> int:
    """Writes ``n`` rows of a code-made task (``jaxrl.llm.tasks``) as JSONL; returns ``n``.

    Verifiable tasks give ``{"prompt", "answer"}`` rows; the preference task gives
    ``{"prompt", "chosen", "rejected", "chosen_score", "rejected_score"}`` rows, the
    scores being its hidden ones. The same ``(split, n, seed)`` gives the same rows as
    ``task.examples`` / ``task.preference_pairs``.
    """
    from jaxrl.llm.tasks import TOKENIZER

    if task.kind == "preference":
        pairs = task.preference_pairs(split, n, seed)
        records = [
            {
                "prompt": TOKENIZER.decode(pairs.prompt_tokens[i]),
                "chosen": TOKENIZER.decode(pairs.chosen_tokens[i]),
                "rejected": TOKENIZER.decode(pairs.rejected_tokens[i]),
                "chosen_score": float(pairs.chosen_score[i]),
                "rejected_score": float(pairs.rejected_score[i]),
            }
            for i in range(n)
        ]
    else:
        records = [{"prompt": q, "answer": a} for q, a in task.examples(split, n, seed)]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return len(records)
