"""Tests of the host reward functions and the reward-spec parser."""

import sys

import numpy as np
import pytest

from jaxrl.llm.rewards import (
    REWARDS,
    accuracy_reward,
    exact_reward,
    extract_answer,
    format_reward,
    make_reward,
    overlong_reward,
    reference_answer,
)


@pytest.mark.parametrize(
    "text, last_number, expected",
    [
        ("so the total is\n#### 1,234", False, "1,234"),
        ("first \\boxed{7} then \\boxed{42}.", False, "42"),
        ("\\boxed{\\frac{1}{2}}", False, "\\frac{1}{2}"),
        ("#### -17\nextra line", False, "-17"),
        ("#### $18 dollars.", False, "$18"),
        ("#### about 5", False, "about 5"),
        (" 3.50 ", False, "3.50"),
        ("I think it is 12, maybe 13", False, None),
        ("I think it is 12, maybe 13", True, "13"),
        ("no answer here", True, None),
        ("\\boxed{8} beats #### 9", False, "8"),
    ],
)
def test_extract_answer(text, last_number, expected):
    assert extract_answer(text, last_number) == expected


def test_reference_answer_is_gsm8k_tail_or_whole_text():
    assert reference_answer("2 + 3 = <<2+3=5>>5\n#### 5") == "5"
    assert reference_answer(" 42 ") == "42"
    assert reference_answer("blue") == "blue"


@pytest.mark.parametrize(
    "completion, answer, expected",
    [
        ("#### 1,234", "work\n#### 1234", 1.0),
        ("#### 1234", "#### 1,234", 1.0),
        ("\\boxed{42}", "#### 42", 1.0),
        ("\\boxed{$42}", "#### 42", 1.0),
        ("#### -5", "#### -5", 1.0),
        ("#### 5", "#### -5", 0.0),
        ("#### 2.50", "#### 2.5", 1.0),
        ("#### 3.0", "#### 3", 1.0),
        ("#### 3.", "#### 3", 1.0),
        ("#### 3.01", "#### 3", 0.0),
        ("#### 18 dollars", "#### 18", 1.0),
        ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
        ("57", "57", 1.0),  # a completion that is only a number
        ("the answer is 57", "57", 0.0),  # no #### / boxed and no last-number fallback
        ("", "#### 1", 0.0),
        ("#### blue", "#### blue", 1.0),  # non-numeric reference: compared as text
        (" fox ", "fox", 1.0),  # ... with the whole completion when nothing is marked
        ("the fox", "fox", 0.0),
        ("123", "0123", 0.0),  # a digit string with a leading zero is compared as text
        ("0123", "0123", 1.0),
        ("#### 0.50", "0.5", 1.0),  # 0.5 is a number
    ],
)
def test_accuracy_cases(completion, answer, expected):
    assert accuracy_reward([""], [completion], [answer])[0] == expected


def test_accuracy_last_number_option_and_dtype():
    out = accuracy_reward(["", ""], ["it is 57", "it is 5"], ["57", "57"], last_number=True)
    assert out.dtype == np.float32 and out.tolist() == [1.0, 0.0]


def test_exact_distinguishes_leading_zeros():
    assert exact_reward(["", ""], [" 0123", "123"], ["0123", "0123"]).tolist() == [1.0, 0.0]


def test_format_default_and_custom_pattern():
    ys = ["so #### 12", "\\boxed{3}", "12", "####"]
    assert format_reward([""] * 4, ys, [""] * 4).tolist() == [1.0, 1.0, 0.0, 0.0]
    out = format_reward([""] * 3, ["<a>x</a>", "y <a>x</a>", "<a></a>"], [""] * 3, r"^<a>.+</a>$")
    assert out.tolist() == [1.0, 0.0, 0.0]


def test_overlong_breakpoints_in_chars():
    # L_max = 10, L_cache = 4: 0 up to L = 6, then (6 - L) / 4, then -1 past 10
    lengths = [0, 6, 7, 8, 10, 11, 30]
    ys = ["x" * n for n in lengths]
    out = overlong_reward([""] * 7, ys, [""] * 7, max_len=10, cache=4, unit="chars")
    np.testing.assert_allclose(out, [0, 0, -0.25, -0.5, -1, -1, -1])
    assert out.dtype == np.float32


def test_overlong_in_tokens_counts_reencoded_ids(tmp_path):
    from jaxrl.llm.testing import tiny_tokenizer, write_tokenizer
    from jaxrl.llm.tokenizer import load_tokenizer

    write_tokenizer(str(tmp_path), tiny_tokenizer())
    tok = load_tokenizer(str(tmp_path))
    ys = ["The quick brown fox", "The quick brown fox jumps over the lazy dog."]
    n = [len(tok.encode(y, add_special_tokens=False)) for y in ys]
    out = overlong_reward(["", ""], ys, ["", ""], max_len=n[1], cache=n[1] - n[0], tokenizer=tok)
    np.testing.assert_allclose(out, [0.0, -1.0])
    with pytest.raises(ValueError, match="needs a tokenizer"):
        overlong_reward([""], ["a"], [""], max_len=4)


def test_make_reward_weighted_sum():
    fn = make_reward("accuracy+0.1*format")
    out = fn(["", "", ""], ["#### 5", "5", "#### 4"], ["5", "5", "5"])
    np.testing.assert_allclose(out, [1.1, 1.0, 0.1], rtol=1e-6)
    fn = make_reward("0.5*overlong(max_len=4, cache=2, unit='chars') + exact")
    np.testing.assert_allclose(fn(["", ""], ["abc", "ab"], ["ab", "ab"]), [-0.25, 1.0])
    fn = make_reward("format(pattern='^\\\\d+$')")  # a pattern holding + and , is kept whole
    assert fn(["", ""], ["12", "1 2"], ["", ""]).tolist() == [1.0, 0.0]
    fn = make_reward("format(pattern='^a+,b$')")
    assert fn(["", ""], ["aa,b", "b"], ["", ""]).tolist() == [1.0, 0.0]


def test_make_reward_errors_are_one_line():
    with pytest.raises(ValueError, match=r"unknown reward 'acuracy'; known: accuracy, exact, form"):
        make_reward("acuracy")
    with pytest.raises(ValueError, match="overlong needs max_len"):
        make_reward("overlong")
    with pytest.raises(ValueError, match=r"'format' does not take \['patern'\]"):
        make_reward("format(patern='x')")
    with pytest.raises(ValueError, match=r": format: missing \), unterminated subpattern"):
        make_reward("format(pattern='(')")
    with pytest.raises(ValueError, match=r"overlong: .*1 <= cache <= max_len \(4\), got 8"):
        make_reward("overlong(max_len=4, cache=8, unit='chars')")
    with pytest.raises(ValueError, match="keyword=literal"):
        make_reward("format(x)")
    with pytest.raises(ValueError, match="'rm:runs/rm' is a reward model; give it to the trainer"):
        make_reward("accuracy+rm:runs/rm")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        make_reward("no_such_module_xyz:fn")
    assert set(REWARDS) == {"accuracy", "exact", "format", "overlong"}


def test_user_reward_module(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(
        "def brevity(prompts, completions, answers, scale=1.0):\n"
        "    return [scale * -len(c) for c in completions]\n"
        "def wrong_length(prompts, completions, answers):\n"
        "    return [0.0]\n"
        "def not_finite(prompts, completions, answers):\n"
        "    return [float('nan')] * len(completions)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        fn = make_reward("accuracy+my_rewards:brevity(scale=0.5)")
        np.testing.assert_allclose(fn(["", ""], ["7", "#### 8"], ["7", "7"]), [0.5, -3.0])
        with pytest.raises(ValueError, match=r"reward 'my_rewards:wrong_length' returned shape"):
            make_reward("my_rewards:wrong_length")(["", ""], ["a", "b"], ["", ""])
        with pytest.raises(ValueError, match=r"'my_rewards:not_finite' returned a non-finite"):
            make_reward("my_rewards:not_finite")([""], ["a"], [""])
        with pytest.raises(ValueError, match="module 'my_rewards' has no function 'missing'"):
            make_reward("my_rewards:missing")
    finally:
        sys.modules.pop("my_rewards", None)


def test_callable_spec_is_checked():
    fn = make_reward(lambda p, c, a: np.ones(len(c)))
    assert fn(["", ""], ["a", "b"], ["", ""]).tolist() == [1.0, 1.0]
