"""Tests of the tokenizer, the tasks and their scores."""

import jax
import numpy as np
import pytest

from jaxrl.llm import (
    BOS,
    EOS,
    PAD,
    SEP,
    TASKS,
    TOKENIZER,
    exact_match_score,
    make_task,
)


def test_tokenizer_round_trip():
    text = "12+34=46 abc"
    ids = TOKENIZER.encode(text)
    assert min(ids) > SEP and len(ids) == len(text)
    assert TOKENIZER.decode([BOS, *ids, EOS, 5, 6]) == text
    assert TOKENIZER.vocab_size == 4 + len(TOKENIZER.chars)
    with pytest.raises(ValueError, match="character"):
        TOKENIZER.encode("A")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_layout_and_splits(name):
    task = make_task(name)
    train = task.examples("train", 300, seed=0)
    heldout = task.examples("heldout", 50, seed=0)
    assert not {q for q, _ in train} & {q for q, _ in heldout}
    p = task.prompts("train", 20, seed=0)
    tok, mask = np.asarray(p.tokens), np.asarray(p.mask)
    assert tok.shape == (20, task.prompt_len)
    assert np.all(tok[:, -1] == SEP) and np.all(mask[:, -1] == 1)  # left-padded
    first = mask.argmax(1)
    assert np.all(tok[np.arange(20), first] == BOS)
    assert np.all(tok[mask == 0] == PAD)
    assert np.all(np.diff(mask, axis=1) >= 0)  # padding only on the left
    data = task.sft_data("train", 20, seed=0)
    cmask = np.asarray(data.completion_mask)
    assert np.all(np.diff(cmask, axis=1) <= 0)  # padding only on the right
    last = cmask.sum(1) - 1
    assert np.all(np.asarray(data.completion_tokens)[np.arange(20), last] == EOS)


def test_addition_and_sorting_answers_are_right():
    for q, a in make_task("addition", num_digits=3).examples("train", 50, seed=1):
        x, y = q.split("+")
        assert int(a) == int(x) + int(y)
    for q, a in make_task("addition", reverse_answer=True).examples("train", 50, seed=1):
        x, y = q.split("+")
        assert int(a[::-1]) == int(x) + int(y)
    for q, a in make_task("sorting").examples("heldout", 50, seed=1):
        assert a == "".join(sorted(q))


def exact_match_reference(y, ym, a, am, partial):
    out = []
    for row in range(len(y)):
        ans = [int(t) for t, m in zip(a[row], am[row], strict=True) if m]
        got = [int(t) for t, m in zip(y[row], ym[row], strict=True) if m]
        if got == ans:
            out.append(1.0)
        else:
            right = sum(1 for j, t in enumerate(ans) if j < len(got) and got[j] == t)
            out.append(partial * right / len(ans))
    return np.array(out)


def test_exact_match_score_matches_reference():
    task = make_task("addition", partial_credit=0.5)
    p = task.prompts("train", 64, seed=2)
    rng = np.random.default_rng(0)
    y = np.array(p.answer)
    ym = np.array(p.answer_mask)
    flip = rng.random(y.shape) < 0.2
    y[flip] = rng.integers(4, 14, flip.sum())  # wrong digits in some places
    cut = rng.random(len(y)) < 0.2
    ym[cut, 0] = 1
    ym[cut, 1:] = 0  # some completions stop after one token
    y = np.pad(y, ((0, 0), (0, 2)))  # a wider completion than the answer
    ym = np.pad(ym, ((0, 0), (0, 2)))
    got = task.score(p, y, ym)
    ref = exact_match_reference(y, ym, np.asarray(p.answer), np.asarray(p.answer_mask), 0.5)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert 0 < np.mean(ref == 1.0) < 1
    full = exact_match_score(p.answer, p.answer_mask, p.answer, p.answer_mask)
    np.testing.assert_array_equal(full, 1.0)


def test_preference_score_and_labels():
    task = make_task("preference")
    pairs = task.preference_pairs("train", 2000, seed=3)
    prompts = task.prompts("train", 1, seed=0)._replace(
        tokens=pairs.prompt_tokens, mask=pairs.prompt_mask
    )
    jit_score = jax.jit(task.score)
    sc = jit_score(prompts, pairs.chosen_tokens, pairs.chosen_mask)
    sr = jit_score(prompts, pairs.rejected_tokens, pairs.rejected_mask)
    np.testing.assert_allclose(sc, pairs.chosen_score, atol=1e-6)
    np.testing.assert_allclose(sr, pairs.rejected_score, atol=1e-6)
    # the string-side twin, by hand
    assert task.hidden_score("37", "3337") == 1.0 and task.hidden_score("37", "1234") == 0.25
    # Bradley–Terry labels follow the hidden score: the better one is chosen more often,
    # and about as often as σ(|Δs| / τ) predicts
    d = np.asarray(pairs.chosen_score - pairs.rejected_score)
    differ = d != 0
    agree = np.mean(d[differ] > 0)
    predicted = np.mean(1 / (1 + np.exp(-np.abs(d[differ]) / task.bt_temperature)))
    assert agree > 0.7 and abs(agree - predicted) < 0.04


def test_unknown_task_and_option():
    with pytest.raises(ValueError, match="known tasks"):
        make_task("chess")
    with pytest.raises(ValueError, match="num_digit"):
        make_task("addition", num_digit=3)
    with pytest.raises(ValueError, match="num_digits"):
        make_task("addition", num_digits=0)
