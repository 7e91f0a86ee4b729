"""Tasks made by code: verifiable tasks and a preference task, on the character tokenizer.

Shapes: ``N`` examples, ``P`` prompt columns, ``C`` completion columns.

Layout of every array a task returns (the one ``transformer.py`` documents):
prompts are ``[BOS] question [SEP]`` **left**-padded to ``P`` columns, completions are
``answer [EOS]`` **right**-padded to ``C`` columns, masks are 1 on real tokens
(the EOS included). ``concat([prompt, completion], axis=1)`` is a model input whose
completion starts at column ``P`` for every row.

Verifiable tasks (``addition``, ``sorting``) have one right answer per prompt; their
``score`` is 1 for an exact answer and ``partial_credit × (share of answer tokens
right)`` otherwise, computed in JAX from the reference answer kept in ``Prompts``.
The preference task (``preference``) has a hidden score: the share of completion
digits that also occur in the prompt. Its pairs are two completions of the base
distribution (random digit strings) labelled by Bradley–Terry sampling,
``P(a ≻ b) = σ((s(a) − s(b)) / τ)`` (Bradley & Terry 1952; as used for RLHF by
Christiano et al. 2017, https://arxiv.org/abs/1706.03741).

Train and held-out splits are disjoint sets of questions, decided by a hash of the
question text, so a held-out score measures generalisation, not memory.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# the character tokenizer lives in tokenizer.py; importable from here as before
from jaxrl.llm.tokenizer import BOS, EOS, PAD, SEP, TOKENIZER, Tokenizer, pack  # noqa: F401

__all__ = [
    "Prompts",
    "SFTData",
    "PreferencePairs",
    "chosen_then_rejected",
    "Task",
    "AdditionTask",
    "SortingTask",
    "PreferenceTask",
    "TASKS",
    "make_task",
    "exact_match_score",
]


class Prompts(NamedTuple):
    """Prompts with their reference answers (``answer_mask`` all 0 where there is none)."""

    tokens: np.ndarray  # [N, P] left-padded ``[BOS] question [SEP]``
    mask: np.ndarray  # [N, P]
    answer: np.ndarray  # [N, C] right-padded ``answer [EOS]``
    answer_mask: np.ndarray  # [N, C]


class SFTData(NamedTuple):
    """Prompt–completion pairs for supervised fine-tuning."""

    prompt_tokens: np.ndarray  # [N, P]
    prompt_mask: np.ndarray  # [N, P]
    completion_tokens: np.ndarray  # [N, C]
    completion_mask: np.ndarray  # [N, C]


class PreferencePairs(NamedTuple):
    """(prompt, chosen, rejected) triples and the hidden scores behind each label."""

    prompt_tokens: np.ndarray  # [N, P]
    prompt_mask: np.ndarray  # [N, P]
    chosen_tokens: np.ndarray  # [N, C]
    chosen_mask: np.ndarray  # [N, C]
    rejected_tokens: np.ndarray  # [N, C]
    rejected_mask: np.ndarray  # [N, C]
    chosen_score: np.ndarray  # [N] hidden true score
    rejected_score: np.ndarray  # [N]


def chosen_then_rejected(pairs) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The ``2N`` rows ``(prompt_tokens, prompt_mask, completion_tokens, completion_mask)``
    of ``N`` pairs: each prompt with its chosen completion (rows ``0 … N − 1``), then with
    its rejected one (rows ``N … 2N − 1``), so one forward pass scores both.

    ``pairs``: a ``PreferencePairs`` (or anything with its six token and mask fields).
    """
    return (
        jnp.concatenate([pairs.prompt_tokens, pairs.prompt_tokens], axis=0),
        jnp.concatenate([pairs.prompt_mask, pairs.prompt_mask], axis=0),
        jnp.concatenate([pairs.chosen_tokens, pairs.rejected_tokens], axis=0),
        jnp.concatenate([pairs.chosen_mask, pairs.rejected_mask], axis=0),
    )


def _check_split(split: str) -> None:
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")


def exact_match_score(completion_tokens, completion_mask, answer, answer_mask, partial_credit=0.0):
    """Verifiable reward: 1 for an exact answer, else ``partial_credit × share right``.

    ``share right = Σ_j answer_mask_j · [y_j = a_j] · completion_mask_j / Σ_j answer_mask_j``;
    exact means the completion mask equals the answer mask and every masked token agrees.

    Args:
        completion_tokens: ``[B, C']`` int sampled completions (right-padded).
        completion_mask: ``[B, C']``.
        answer: ``[B, C]`` reference answers (right-padded, EOS included).
        answer_mask: ``[B, C]``.
        partial_credit: weight of the per-token share for inexact answers.

    Returns:
        ``[B]`` float32 scores in [0, 1].
    """
    width = max(completion_tokens.shape[1], answer.shape[1])

    def pad(x):
        return jnp.pad(jnp.asarray(x, jnp.int32), ((0, 0), (0, width - x.shape[1])))

    y, ym, a, am = pad(completion_tokens), pad(completion_mask), pad(answer), pad(answer_mask)
    agree = (y == a) & (ym > 0) & (am > 0)
    exact = jnp.all((ym > 0) == (am > 0), axis=1) & jnp.all(agree | (am == 0), axis=1)
    share = jnp.sum(agree, axis=1) / jnp.maximum(jnp.sum(am, axis=1), 1)
    return jnp.where(exact, 1.0, partial_credit * share).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Task:
    """Common interface. Subclasses define ``_max_chars`` (or ``prompt_len`` and
    ``completion_len``) and ``_example``.

    ``kind`` is ``"verifiable"`` or ``"preference"``.
    """

    heldout_share: float = 0.1

    kind = "verifiable"
    # Whether ``score`` can be called: the code-made tasks always score; a preference
    # dataset without a reward (``jaxrl.llm.data``) cannot, and its trainers skip the score.
    has_score = True

    # Token ids generation needs: the tokens that end a completion and the padding written
    # after it. The code-made tasks use the character tokenizer's; a dataset task
    # (``jaxrl.llm.data``) uses its pretrained tokenizer's.
    eos_ids: tuple[int, ...] = (EOS,)
    pad_id: int = PAD

    def generation_config(self, max_new_tokens: int | None = None, **options):
        """A ``GenerationConfig`` for this task's completions: its stop and pad tokens,
        ``max_new_tokens`` (default: the task's completion length) and ``options``."""
        from jaxrl.llm.generate import GenerationConfig

        return GenerationConfig(
            max_new_tokens=max_new_tokens or self.completion_len,
            eos_id=self.eos_ids,
            pad_id=self.pad_id,
            **options,
        )

    @property
    def name(self) -> str:
        """The registry name of this task's class (the class name if unregistered)."""
        return next((k for k, v in TASKS.items() if type(self) is v), type(self).__name__)

    @property
    def prompt_len(self) -> int:
        """Prompt columns: ``[BOS] question [SEP]`` of the longest question (``_encode``)."""
        return self._max_chars()[0] + 2

    @property
    def completion_len(self) -> int:
        """Completion columns: ``answer [EOS]`` of the longest answer (``_encode``)."""
        return self._max_chars()[1] + 1

    def _max_chars(self) -> tuple[int, int]:
        """The longest question and answer, in characters (one token each)."""
        raise NotImplementedError

    def _example(self, rng: np.random.Generator) -> tuple[str, str]:
        raise NotImplementedError

    def is_heldout(self, question: str) -> bool:
        """Whether ``question`` belongs to the held-out split (a fixed hash of its text)."""
        return zlib.crc32(question.encode()) % 1000 < 1000 * self.heldout_share

    def examples(self, split: str, n: int, seed: int) -> list[tuple[str, str]]:
        """``n`` (question, answer) strings of ``split``, drawn with numpy seed ``seed``."""
        _check_split(split)
        rng = np.random.default_rng(seed)
        out = []
        while len(out) < n:
            q, a = self._example(rng)
            if self.is_heldout(q) == (split == "heldout"):
                out.append((q, a))
        return out

    def _encode(self, pairs) -> tuple[np.ndarray, ...]:
        tok = TOKENIZER
        p, pm = pack([[BOS, *tok.encode(q), SEP] for q, _ in pairs], self.prompt_len, PAD, True)
        c, cm = pack([[*tok.encode(a), EOS] for _, a in pairs], self.completion_len, PAD, False)
        return p, pm, c, cm

    def prompts(self, split: str, n: int, seed: int = 0) -> Prompts:
        """``n`` prompts of ``split`` with their reference answers."""
        return Prompts(*self._encode(self.examples(split, n, seed)))

    def sft_data(self, split: str, n: int, seed: int = 0) -> SFTData:
        """``n`` prompt–completion pairs of ``split`` (completions are the right answers)."""
        return SFTData(*self._encode(self.examples(split, n, seed)))

    def score(self, prompts: Prompts, completion_tokens, completion_mask) -> jax.Array:
        """True reward of completions; pure JAX (jit-able). Returns ``[B]`` float32."""
        return exact_match_score(
            completion_tokens,
            completion_mask,
            prompts.answer,
            prompts.answer_mask,
            self.partial_credit,
        )


@dataclasses.dataclass(frozen=True)
class AdditionTask(Task):
    """``a+b`` → ``a + b`` in decimal, operands of 1 to ``num_digits`` digits.

    ``reverse_answer`` writes the sum least-significant digit first, which lets a
    small causal model produce each digit after the carry it depends on.
    """

    num_digits: int = 2
    reverse_answer: bool = False
    partial_credit: float = 0.0

    def __post_init__(self):
        if not 1 <= self.num_digits <= 6:
            raise ValueError(f"AdditionTask.num_digits must be in [1, 6], got {self.num_digits}")
        if not 0.0 <= self.partial_credit <= 1.0:
            raise ValueError(f"partial_credit must be in [0, 1], got {self.partial_credit}")

    def _max_chars(self) -> tuple[int, int]:
        return 2 * self.num_digits + 1, self.num_digits + 1  # "a+b", a + b

    def _example(self, rng):
        a, b = (int(rng.integers(0, 10**self.num_digits)) for _ in range(2))
        answer = str(a + b)
        return f"{a}+{b}", answer[::-1] if self.reverse_answer else answer


@dataclasses.dataclass(frozen=True)
class SortingTask(Task):
    """A string of ``min_len``–``max_len`` digits → the same digits in ascending order."""

    min_len: int = 3
    max_len: int = 6
    partial_credit: float = 0.0

    def __post_init__(self):
        if not 1 <= self.min_len <= self.max_len <= 16:
            raise ValueError(
                f"SortingTask needs 1 <= min_len <= max_len <= 16, got "
                f"min_len={self.min_len}, max_len={self.max_len}"
            )
        if not 0.0 <= self.partial_credit <= 1.0:
            raise ValueError(f"partial_credit must be in [0, 1], got {self.partial_credit}")

    def _max_chars(self) -> tuple[int, int]:
        return self.max_len, self.max_len

    def _example(self, rng):
        n = int(rng.integers(self.min_len, self.max_len + 1))
        q = "".join(str(d) for d in rng.integers(0, 10, n))
        return q, "".join(sorted(q))


@dataclasses.dataclass(frozen=True)
class PreferenceTask(Task):
    """Prompt: 2–``max_prompt`` random digits. Completion: 3–``max_completion`` random digits.

    Hidden score ``s(x, y) = |{j : y_j occurs in x}| / |y|`` (share of completion digits
    found in the prompt; 0 for an empty completion). Base completions score about 0.3
    on average; a policy that copies prompt digits scores 1.
    Pairs are labelled ``a ≻ b`` with probability ``σ((s(a) − s(b)) / bt_temperature)``.
    """

    max_prompt: int = 4
    min_completion: int = 3
    max_completion: int = 8
    bt_temperature: float = 0.1

    kind = "preference"

    def __post_init__(self):
        if not 2 <= self.max_prompt <= 16:
            raise ValueError(f"PreferenceTask.max_prompt must be in [2, 16], got {self.max_prompt}")
        if not 1 <= self.min_completion <= self.max_completion <= 32:
            raise ValueError(
                "PreferenceTask needs 1 <= min_completion <= max_completion <= 32, got "
                f"min_completion={self.min_completion}, max_completion={self.max_completion}"
            )
        if not self.bt_temperature > 0:
            raise ValueError(f"bt_temperature must be > 0, got {self.bt_temperature}")

    def _max_chars(self) -> tuple[int, int]:
        return self.max_prompt, self.max_completion

    def _question(self, rng) -> str:
        return "".join(
            str(d) for d in rng.integers(0, 10, int(rng.integers(2, self.max_prompt + 1)))
        )

    def _completion(self, rng) -> str:
        n = int(rng.integers(self.min_completion, self.max_completion + 1))
        return "".join(str(d) for d in rng.integers(0, 10, n))

    def _example(self, rng):
        return self._question(rng), self._completion(rng)

    def hidden_score(self, question: str, completion: str) -> float:
        """``s(x, y)`` on strings (the NumPy-side twin of ``score``)."""
        return sum(c in question for c in completion) / len(completion) if completion else 0.0

    def score(self, prompts: Prompts, completion_tokens, completion_mask) -> jax.Array:
        """Hidden score of token completions; pure JAX. Returns ``[B]`` float32.

        Only digit tokens before EOS count as the completion (the EOS is not a digit).
        """
        digit_lo, digit_hi = TOKENIZER.encode("0")[0], TOKENIZER.encode("9")[0]
        y = jnp.asarray(completion_tokens)
        ym = (jnp.asarray(completion_mask) > 0) & (y != EOS)
        x = jnp.asarray(prompts.tokens)
        xm = (jnp.asarray(prompts.mask) > 0) & (x >= digit_lo) & (x <= digit_hi)
        found = jnp.any((y[:, :, None] == x[:, None, :]) & xm[:, None, :], axis=-1) & ym
        return (jnp.sum(found, 1) / jnp.maximum(jnp.sum(ym, 1), 1)).astype(jnp.float32)

    def preference_pairs(self, split: str, n: int, seed: int = 0) -> PreferencePairs:
        """``n`` Bradley–Terry-labelled pairs of base completions for prompts of ``split``."""
        _check_split(split)
        rng = np.random.default_rng(seed)
        questions, chosen, rejected, s_c, s_r = [], [], [], [], []
        while len(questions) < n:
            q = self._question(rng)
            if self.is_heldout(q) != (split == "heldout"):
                continue
            a, b = self._completion(rng), self._completion(rng)
            sa, sb = self.hidden_score(q, a), self.hidden_score(q, b)
            p_a = 1.0 / (1.0 + np.exp(-(sa - sb) / self.bt_temperature))
            if rng.random() >= p_a:
                a, b, sa, sb = b, a, sb, sa
            questions.append(q)
            chosen.append(a)
            rejected.append(b)
            s_c.append(sa)
            s_r.append(sb)
        tok = TOKENIZER
        p, pm = pack([[BOS, *tok.encode(q), SEP] for q in questions], self.prompt_len, PAD, True)
        c, cm = pack([[*tok.encode(a), EOS] for a in chosen], self.completion_len, PAD, False)
        r, rm = pack([[*tok.encode(b), EOS] for b in rejected], self.completion_len, PAD, False)
        return PreferencePairs(
            p, pm, c, cm, r, rm, np.asarray(s_c, np.float32), np.asarray(s_r, np.float32)
        )


TASKS: dict[str, type[Task]] = {
    "addition": AdditionTask,
    "sorting": SortingTask,
    "preference": PreferenceTask,
}


def make_task(name: str, **options) -> Task:
    """The task registered as ``name``, built with ``options`` (its dataclass fields).

    Raises:
        ValueError: for an unknown name (listing the known ones) or an unknown option.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    cls = TASKS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"task {name!r} has no option(s) {unknown}; allowed: {sorted(fields)}")
    return cls(**options)
