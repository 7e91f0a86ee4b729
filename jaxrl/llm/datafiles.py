"""Dataset files: reading and checking their rows, and tokenising them (for ``data.py``).

``read_rows`` reads a JSONL (or Parquet) file, tells the row format from the first row's
keys (``FORMATS``) and checks every row, raising one line that names the file, line and
field of the first malformed one. ``encode_rows`` turns rows into token ids with a
pretrained tokenizer: the chat template for conversational rows, plain text otherwise.
The formats and the tokenisation rules are described in ``jaxrl.llm.data``.
``write_jsonl`` goes the other way: a code-made task's rows written as a JSONL file.
"""

from __future__ import annotations

import functools
import json
import os
from typing import NamedTuple

from jaxrl.llm.tokenizer import TOKENIZER, PretrainedTokenizer, pack

__all__ = ["FORMATS", "Row", "read_rows", "Encoded", "encode_rows", "pack", "write_jsonl"]

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
    """``(line, dict)`` of each row of a JSONL or Parquet file (Parquet rows count from 1)."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if path.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(
                f"{path}: reading Parquet needs pyarrow (pip install pyarrow)"
            ) from None
        try:
            records = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow's own error types
            raise ValueError(f"{path}: not a readable Parquet file ({e})") from None
        yield from enumerate(records, 1)
        return
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


def _render(
    tok: PretrainedTokenizer, messages: list, add_generation_prompt: bool, where: str
) -> str:
    import jinja2

    try:
        return _compiled_template(tok.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **tok.special_tokens
        )
    except jinja2.TemplateError as e:  # e.g. raise_exception('roles must alternate')
        raise ValueError(f"{where}: the chat template rejects this row ({e})") from None


def _as_messages(x, role: str) -> list:
    return x if isinstance(x, list) else [{"role": role, "content": x}]


class Encoded(NamedTuple):
    """Token ids of one row: completions end with EOS unless cut (``truncated``)."""

    prompt: list[int]
    completion: list[int]
    rejected: list[int] | None
    truncated: bool


def encode_rows(
    rows: list[Row], tok: PretrainedTokenizer, chat_template: bool | None, max_completion: int
) -> tuple[list[Encoded], list[str], dict[str, list[int]]]:
    """Token ids of every row, with the rules of ``jaxrl.llm.data``.

    Args:
        rows: checked rows (``read_rows``).
        tok: the tokenizer (its chat template, BOS and stop tokens).
        chat_template: None: the template for conversational rows only; True: for every row;
            False: for none (a conversational row is then an error).
        max_completion: completions with more ids (EOS included) are cut to this many.

    Returns:
        ``(encoded, prompt_texts, known)``: an ``Encoded`` per row; each prompt's text as
        encoded (the template's rendering for chat rows); ``{completion text: ids}`` of the
        texts encoded (before the EOS and the cut), for reuse.
    """
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
            text = _render(tok, messages, True, r.where)
            for target in (r.completion, r.rejected):
                if target is None:
                    continue
                full = _render(tok, messages + _as_messages(target, "assistant"), False, r.where)
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
        out.append(Encoded(p, c, rej, cut_c or cut_r))
    return out, prompt_texts, known


def write_jsonl(task, path: str, split: str = "train", n: int = 1000, seed: int = 0) -> int:
    """Writes ``n`` rows of a code-made task (``jaxrl.llm.tasks``) as JSONL; returns ``n``.

    Verifiable tasks give ``{"prompt", "answer"}`` rows; the preference task gives
    ``{"prompt", "chosen", "rejected", "chosen_score", "rejected_score"}`` rows, the
    scores being its hidden ones. The same ``(split, n, seed)`` gives the same rows as
    ``task.examples`` / ``task.preference_pairs``.
    """
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
