"""Reward functions computed on the host over decoded text, and a spec parser that sums them.

Every reward has the signature ``fn(prompts, completions, answers) -> np.ndarray``: three
lists of ``B`` strings (the prompt text, the sampled completion decoded without special
tokens, the row's reference answer text) in, ``[B]`` float32 scores out. A
``jaxrl.llm.data.DatasetTask`` calls one inside a compiled step through
``jax.pure_callback``; the rest of the step stays compiled.

Built-in rewards (``REWARDS``):

- ``accuracy``: 1 when the completion's final number equals the reference's, else 0.
- ``exact``: 1 when the stripped completion equals the stripped reference, else 0.
- ``format``: 1 when the completion matches a regular expression, else 0.
- ``overlong``: DAPO's soft overlong punishment, 0 down to −1 as a completion nears and
  passes a length limit.

``make_reward("accuracy+0.1*format")`` builds their weighted sum; a term ``pkg.mod:fn``
imports a user function of the same signature. Options go in parentheses as Python
keyword literals: ``"accuracy+0.5*overlong(max_len=64, cache=16)"``,
``"format(pattern=r'^#### \\d+$')"``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np

__all__ = [
    "REWARDS",
    "extract_answer",
    "reference_answer",
    "accuracy_reward",
    "exact_reward",
    "format_reward",
    "overlong_reward",
    "make_reward",
]

# fn(prompts, completions, answers) -> [B] float32: three lists of B strings in
RewardFn = Callable[[Sequence[str], Sequence[str], Sequence[str]], np.ndarray]

_NUMBER = r"[-+]?\$?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_DEFAULT_FORMAT = r"####\s*" + _NUMBER + r"|\\boxed\{[^{}]*\}"


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text`` (nested braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def extract_answer(text: str, last_number: bool = False) -> str | None:
    """The final answer written in ``text``, or None.

    In order: the content of the last ``\\boxed{...}``; else the text after the last
    ``####`` (GSM8K's convention) up to the end of its line (only the number when the line
    starts with one); else the whole text when it is one number; else, with
    ``last_number``, the last number in the text.
    """
    boxed = _boxed(text)
    if boxed is not None:
        return boxed.strip()
    if "####" in text:
        line = text.rsplit("####", 1)[1].strip().split("\n", 1)[0].strip()
        number = _NUMBER_RE.match(line)  # "#### 18 dollars" -> "18"
        return number.group().strip() if number else line
    if _NUMBER_RE.fullmatch(text.strip()):
        return text.strip()
    if last_number:
        found = _NUMBER_RE.findall(text)
        return found[-1].strip() if found else None
    return None


def reference_answer(answer: str) -> str:
    """The reference of an answer text: after the last ``####`` (GSM8K), inside
    ``\\boxed{}``, else the whole text, stripped."""
    found = extract_answer(answer)
    return answer.strip() if found is None else found


def _to_number(text: str) -> Fraction | None:
    """``text`` as an exact number, tolerating ``$``, thousands commas, a trailing ``.``,
    surrounding spaces and ``\\frac{a}{b}``; None when it is not a number."""
    t = text.strip().replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    m = re.fullmatch(r"(-?)\\d?frac\{(-?\d+)\}\{(-?\d+)\}", t)
    if m:
        t = f"{m[1]}{m[2]}/{m[3]}"
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?(/[-+]?\d+)?", t):
        return None
    try:
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


def accuracy_reward(prompts, completions, answers, last_number: bool = False) -> np.ndarray:
    """Exact numeric answer: ``r = 1`` if ``num(extract(y)) = num(ref(a))`` else ``0``.

    ``extract`` is ``extract_answer`` (``\\boxed{}``, then ``####``, then a completion that
    is one number; the last number in the text with ``last_number``); ``ref`` is
    ``reference_answer`` (GSM8K's ``#### N``). Numbers compare exactly as fractions, so
    ``1,234`` = ``1234``, ``$5`` = ``5``, ``3.0`` = ``3``, ``\\frac{1}{2}`` = ``0.5``; a
    completion with no answer scores 0. A reference that is not a number is compared as
    text (stripped) with the marked answer, or with the whole completion when none is
    marked: an exact match for free-text answers; so is a reference with a leading zero
    (a digit string such as ``0123``, where ``123`` is wrong). ``####`` is GSM8K's answer
    marker (Cobbe et al. 2021, https://arxiv.org/abs/2110.14168), ``\\boxed{}`` MATH's
    (Hendrycks et al. 2021, https://arxiv.org/abs/2103.03874).

    Args:
        prompts: ``B`` prompt texts (unused).
        completions: ``B`` completion texts.
        answers: ``B`` reference answer texts.
        last_number: fall back to the last number in the completion.

    Returns:
        ``[B]`` float32 in {0, 1}.
    """
    out = np.zeros(len(completions), np.float32)
    for i, (y, a) in enumerate(zip(completions, answers, strict=True)):
        got, ref = extract_answer(y, last_number), reference_answer(a)
        # a digit string with a leading zero (sorting's "0123") is text, not the number 123
        ref_n = None if re.match(r"-?0\d", ref) else _to_number(ref)
        if ref_n is None:  # a text answer: the marked answer, else the whole completion
            out[i] = (y.strip() if got is None else got) == ref
        elif got is not None:
            out[i] = _to_number(got) == ref_n
    return out


def exact_reward(prompts, completions, answers) -> np.ndarray:
    """Exact text: ``r = 1`` if ``strip(y) = strip(a)`` else ``0`` (for non-numeric tasks,
    e.g. sorting, where ``0123`` and ``123`` differ). Returns ``[B]`` float32."""
    return np.asarray(
        [y.strip() == a.strip() for y, a in zip(completions, answers, strict=True)], np.float32
    )


def format_reward(prompts, completions, answers, pattern: str | None = None) -> np.ndarray:
    """Format: ``r = 1`` if ``re.search(pattern, y)`` finds a match else ``0``.

    The default pattern accepts a GSM8K-style ``#### N`` or a ``\\boxed{...}``; anchor a
    custom pattern with ``^…$`` (flags: ``re.DOTALL | re.MULTILINE``) to require the whole
    completion to match. Returns ``[B]`` float32.
    """
    regex = re.compile(pattern or _DEFAULT_FORMAT, re.DOTALL | re.MULTILINE)
    return np.asarray([regex.search(y) is not None for y in completions], np.float32)


def overlong_reward(
    prompts,
    completions,
    answers,
    max_len: int | None = None,
    cache: int | None = None,
    unit: str = "tokens",
    tokenizer=None,
) -> np.ndarray:
    """Soft overlong punishment (DAPO, Yu et al. 2025, https://arxiv.org/abs/2503.14476):

        r(L) = 0                          if L ≤ L_max − L_cache
             = (L_max − L_cache − L) / L_cache   if L_max − L_cache < L ≤ L_max
             = −1                         if L > L_max

    Args:
        completions: ``B`` completion texts.
        max_len: ``L_max``.
        cache: ``L_cache``, the length of the linear ramp (default ``max(1, L_max // 4)``).
        unit: ``"tokens"`` (``L`` = ids of the text re-encoded without special tokens, so a
            stop token is not counted; needs ``tokenizer``) or ``"chars"``.
        tokenizer: a ``PretrainedTokenizer`` (unit tokens).

    Returns:
        ``[B]`` float32 in [−1, 0].
    """
    if max_len is None or max_len < 1:
        raise ValueError(f"overlong reward needs max_len >= 1, got {max_len!r}")
    cache = max(1, max_len // 4) if cache is None else cache
    if not 1 <= cache <= max_len:
        raise ValueError(f"overlong reward needs 1 <= cache <= max_len ({max_len}), got {cache}")
    if unit == "chars":
        lengths = np.asarray([len(y) for y in completions], np.float32)
    elif unit == "tokens":
        if tokenizer is None:
            raise ValueError("overlong reward with unit='tokens' needs a tokenizer")
        enc = tokenizer.tokenizer.encode_batch(list(completions), add_special_tokens=False)
        lengths = np.asarray([len(e.ids) for e in enc], np.float32)
    else:
        raise ValueError(f"overlong reward unit must be 'tokens' or 'chars', got {unit!r}")
    ramp = (max_len - cache - lengths) / cache
    return np.clip(ramp, -1.0, 0.0).astype(np.float32)


REWARDS: dict[str, Callable[..., np.ndarray]] = {
    "accuracy": accuracy_reward,
    "exact": exact_reward,
    "format": format_reward,
    "overlong": overlong_reward,
}


def _split_terms(spec: str) -> list[str]:
    """``spec`` split at each ``+`` outside parentheses and quotes."""
    terms, depth, quote, start = [], 0, None, 0
    for i, c in enumerate(spec):
        if quote:
            quote = None if c == quote and spec[i - 1] != "\\" else quote
        elif c in "'\"":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "+" and depth == 0 and i > start:
            terms.append(spec[start:i])
            start = i + 1
    terms.append(spec[start:])
    return [t.strip() for t in terms]


_TERM = re.compile(r"(?:([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*\*\s*)?([\w.:/-]+)\s*(?:\((.*)\))?", re.S)


def _parse_options(spec: str, term: str, text: str | None) -> dict:
    if not text:
        return {}
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        if call.args:
            raise ValueError("positional")
        return {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError):
        raise ValueError(
            f"reward spec {spec!r}: options of {term!r} must be keyword=literal pairs, got ({text})"
        ) from None


def _user_reward(spec: str, name: str) -> Callable[..., np.ndarray]:
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(
            f"reward spec {spec!r}: cannot import module {module_name!r} ({e})"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"reward spec {spec!r}: module {module_name!r} has no function {attr!r}")
    return fn


def _check_options(spec: str, name: str, fn: Callable, options: dict) -> None:
    """Raises now, not inside a compiled step, for options ``fn`` does not take or (a
    built-in reward) rejects."""
    try:
        inspect.signature(fn).bind([], [], [], **options)
    except TypeError as e:
        raise ValueError(
            f"reward spec {spec!r}: {name!r} does not take {sorted(options)} ({e})"
        ) from None
    except ValueError:  # no signature (a builtin or C function): checked when called
        return
    if name in REWARDS:
        try:
            REWARDS[name]([], [], [], **options)
        except (ValueError, re.error) as e:
            raise ValueError(f"reward spec {spec!r}: {name}: {e}") from None


def _checked(fn: Callable[..., np.ndarray], label: str, options: dict) -> RewardFn:
    """``fn`` with ``options`` bound, its output checked: one finite float per row."""

    def reward(prompts, completions, answers):
        out = fn(list(prompts), list(completions), list(answers), **options)
        try:
            out = np.asarray(out, np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"reward {label} returned {type(out).__name__}, not floats") from None
        if out.shape != (len(completions),):
            raise ValueError(
                f"reward {label} returned shape {out.shape}; expected ({len(completions)},): "
                "one float per completion"
            )
        if not np.all(np.isfinite(out)):
            bad = int(np.flatnonzero(~np.isfinite(out))[0])
            raise ValueError(f"reward {label} returned a non-finite score {out[bad]} at row {bad}")
        return out

    reward.__name__ = label
    return reward


def make_reward(spec: str | Callable, tokenizer=None, max_len: int | None = None) -> RewardFn:
    """A host reward from a spec: ``r = Σ_k w_k · r_k`` over ``"w1*name1(opts)+w2*name2"``.

    A name is one of ``REWARDS`` or ``pkg.module:function`` (imported now; the function
    takes ``(prompts, completions, answers, **opts)`` and returns one float per row);
    weights default to 1. A callable ``spec`` is used as the user function itself. Every
    term's output is checked (shape ``[B]``, finite), with the term named in the error.

    Args:
        spec: e.g. ``"accuracy"``, ``"accuracy+0.1*format"``,
            ``"accuracy+overlong(max_len=64)"``, ``"mypkg.rewards:brevity"``.
        tokenizer: passed to ``overlong`` (token lengths).
        max_len: ``overlong``'s default ``max_len`` (a dataset task passes its
            completion length).

    Returns:
        ``fn(prompts, completions, answers) -> [B] float32``.

    Raises:
        ValueError: an unknown name (listing the known ones), bad options, or a user module
            or function that cannot be imported.
    """
    if callable(spec):
        return _checked(spec, getattr(spec, "__name__", repr(spec)), {})
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"reward spec must be a non-empty string, got {spec!r}")
    parts = []
    for term in _split_terms(spec):
        m = _TERM.fullmatch(term)
        if not m:
            raise ValueError(f"reward spec {spec!r}: cannot parse term {term!r} (want w*name(k=v))")
        weight, name, opts = float(m[1]) if m[1] else 1.0, m[2], _parse_options(spec, term, m[3])
        if name.startswith("rm:"):
            raise ValueError(
                f"reward spec {spec!r}: {name!r} is a reward model; give it to the trainer "
                "(reward_model=..., or the CLI's --reward rm:RUN), not to make_reward"
            )
        if ":" in name:
            fn = _user_reward(spec, name)
        elif name in REWARDS:
            fn = REWARDS[name]
            if name == "overlong":
                opts = {"max_len": max_len, "tokenizer": tokenizer, **opts}
        else:
            raise ValueError(
                f"reward spec {spec!r}: unknown reward {name!r}; known: "
                f"{', '.join(REWARDS)}, or module:function"
            )
        if not math.isfinite(weight):
            raise ValueError(f"reward spec {spec!r}: weight of {name!r} must be finite")
        if name == "overlong" and opts.get("max_len") is None:
            raise ValueError(f"reward spec {spec!r}: overlong needs max_len (overlong(max_len=N))")
        _check_options(spec, name, fn, opts)
        parts.append((weight, _checked(fn, repr(name), opts)))

    def reward(prompts, completions, answers):
        total = np.zeros(len(completions), np.float32)
        for weight, fn in parts:
            total += np.float32(weight) * fn(prompts, completions, answers)
        return total

    reward.__name__ = spec
    return reward
