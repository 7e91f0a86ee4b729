"""Tests of dataset files as tasks: formats, chat template, masks, limits, errors, score."""

import copy
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.llm.data import DatasetTask, dataset_task, read_rows, write_jsonl
from jaxrl.llm.rewards import accuracy_reward
from jaxrl.llm.tasks import make_task


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    from jaxrl.llm.testing import tiny_tokenizer, write_tokenizer

    path = str(tmp_path_factory.mktemp("tok"))
    write_tokenizer(path, tiny_tokenizer())
    return path


@pytest.fixture(scope="module")
def tok(tok_dir):
    from jaxrl.llm.tokenizer import load_tokenizer

    return load_tokenizer(tok_dir)


def write(tmp_path, rows, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def real(tokens, mask):
    """The ids under the mask of one row."""
    return np.asarray(tokens)[np.asarray(mask) > 0].tolist()


def test_prompt_completion_layout_and_loss_mask(tmp_path, tok):
    rows = [
        {"prompt": "Two plus three is", "completion": " five."},
        {"prompt": "Hi", "completion": "x"},
    ]
    task = dataset_task(write(tmp_path, rows), tok, heldout_share=0.0)
    assert task.kind == "verifiable" and task.format == "prompt/completion"
    eos = tok.eos_ids[0]
    prompts = [tok.encode(r["prompt"]) for r in rows]  # the tokenizer's BOS included
    completions = [tok.encode(r["completion"], add_special_tokens=False) + [eos] for r in rows]
    assert prompts[0][0] == tok.bos_id
    assert task.prompt_len == max(map(len, prompts))
    assert task.completion_len == max(map(len, completions))
    data = task.sft_data("train")
    assert data.prompt_tokens.shape == (2, task.prompt_len)
    for i in range(2):
        assert real(data.prompt_tokens[i], data.prompt_mask[i]) == prompts[i]
        assert data.prompt_mask[i, -1] == 1  # left-padded
        # the loss mask: 1 on exactly the completion's tokens, its EOS last
        assert real(data.completion_tokens[i], data.completion_mask[i]) == completions[i]
        assert data.completion_mask[i, 0] == 1 and data.completion_mask[i].sum() == len(
            completions[i]
        )
    assert task.examples("train") == [(r["prompt"], r["completion"]) for r in rows]
    # the default reward (accuracy) on a non-numeric reference is an exact text match
    assert task.has_score
    p, c = task.prompts("train"), task.sft_data("train")
    np.testing.assert_array_equal(task.score(p, c.completion_tokens, c.completion_mask), [1, 1])
    swapped = c.completion_tokens[::-1], c.completion_mask[::-1]
    np.testing.assert_array_equal(task.score(p, *swapped), [0, 0])


def test_chat_messages_use_the_template(tmp_path, tok):
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "I am fine, thank you."},
    ]
    task = dataset_task(write(tmp_path, [{"messages": msgs}]), tok, heldout_share=0.0)
    data = task.sft_data("train")
    expected_prompt = tok.apply_chat_template(msgs[:-1], add_generation_prompt=True, tokenize=True)
    assert real(data.prompt_tokens[0], data.prompt_mask[0]) == expected_prompt
    # the template ends the assistant turn with <|im_end|> (a stop token): the completion
    # is the content, then that token, and nothing after it
    im_end = tok.token_id("<|im_end|>")
    assert im_end in tok.eos_ids
    expected = tok.encode("I am fine, thank you.", add_special_tokens=False) + [im_end]
    assert real(data.completion_tokens[0], data.completion_mask[0]) == expected
    full = tok.apply_chat_template(msgs, add_generation_prompt=False, tokenize=True)
    assert full[: len(expected_prompt) + len(expected)] == expected_prompt + expected


def test_a_template_error_names_the_row(tmp_path, tok):
    strict = copy.copy(tok)
    strict.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('no system messages') }}{% endif %}{{ m['content'] }}{% endfor %}"
    )
    rows = [
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
        {"messages": [{"role": "system", "content": "a"}, {"role": "assistant", "content": "b"}]},
    ]
    with pytest.raises(ValueError, match=r"data.jsonl:2: the chat template rejects this row \(no"):
        dataset_task(write(tmp_path, rows), strict)


def test_chat_template_true_wraps_plain_prompts(tmp_path, tok):
    path = write(tmp_path, [{"prompt": "12+34", "answer": "46"}])
    plain = dataset_task(path, tok, heldout_share=0.0)
    chat = dataset_task(path, tok, heldout_share=0.0, chat_template=True)
    msgs = [{"role": "user", "content": "12+34"}]
    p = chat.prompts("train")
    assert real(p.tokens[0], p.mask[0]) == tok.apply_chat_template(msgs, tokenize=True)
    q = plain.prompts("train")
    assert real(q.tokens[0], q.mask[0]) == tok.encode("12+34")
    with pytest.raises(ValueError, match="message list but chat_template=False"):
        dataset_task(
            write(tmp_path, [{"prompt": msgs, "completion": "46"}], "m.jsonl"),
            tok,
            chat_template=False,
        )


def test_gsm8k_rows_keep_full_answer_and_score_on_reference(tmp_path, tok):
    rows = [{"question": "What is 3 times 4?", "answer": "3 * 4 = 12\n#### 12"}]
    task = dataset_task(write(tmp_path, rows), tok, heldout_share=0.0)
    assert task.format == "question/answer" and task.kind == "verifiable"
    data = task.sft_data("train")
    expected = tok.encode(rows[0]["answer"], add_special_tokens=False) + [tok.eos_ids[0]]
    assert real(data.completion_tokens[0], data.completion_mask[0]) == expected
    p = task.prompts("train")
    assert tok.decode(real(p.answer[0], p.answer_mask[0])) == rows[0]["answer"]
    ys = ["so \\boxed{12}", "#### 13", "12"]
    c = [tok.encode(y, add_special_tokens=False) + [tok.eos_ids[0]] for y in ys]
    tokens = np.zeros((3, 20), np.int32)
    mask = np.zeros((3, 20), np.int32)
    for i, ids in enumerate(c):
        tokens[i, : len(ids)], mask[i, : len(ids)] = ids, 1
    prompts3 = jax.tree_util.tree_map(lambda x: np.repeat(x, 3, axis=0), p)
    out = np.asarray(task.score(prompts3, tokens, mask))
    assert out.tolist() == [1.0, 0.0, 1.0]


def test_score_under_jit_equals_host_reward_on_decoded_text(tmp_path, tok):
    rows = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(12)]
    task = dataset_task(write(tmp_path, rows), tok, heldout_share=0.0, reward="accuracy+0.5*format")
    p = task.prompts("train", 8)
    rng = np.random.default_rng(0)
    texts = [f"#### {2 * i + int(rng.integers(0, 2))}" if i % 3 else str(2 * i) for i in range(8)]
    ids = [tok.encode(t, add_special_tokens=False) + [tok.eos_ids[0]] for t in texts]
    width = max(map(len, ids)) + 3
    tokens = np.full((8, width), tok.pad_id, np.int32)
    mask = np.zeros((8, width), np.int32)
    for i, r in enumerate(ids):
        tokens[i, : len(r)], mask[i, : len(r)] = r, 1
    tokens[:, -1] = 7  # garbage after the mask must be ignored

    @jax.jit
    def step(prompts, tokens, mask):
        return task.score(prompts, tokens, mask) * 2.0

    got = np.asarray(step(jax.tree_util.tree_map(jnp.asarray, p), tokens, mask)) / 2.0
    decoded = [tok.decode(real(tokens[i], mask[i])) for i in range(8)]
    assert decoded == texts
    answers = [r["answer"] for r in rows[:8]]
    expected = accuracy_reward(None, decoded, answers) + 0.5 * np.asarray(
        ["####" in t for t in texts], np.float32
    )
    np.testing.assert_allclose(got, expected)
    assert 0 < got.mean() < 1.5  # both right and wrong answers in the batch
    # under vmap (two batches stacked) each batch gets its own scores
    stacked = jax.tree_util.tree_map(lambda x: np.stack([x, x[::-1]]), (p, tokens, mask))
    both = np.asarray(jax.vmap(task.score)(*stacked))
    np.testing.assert_allclose(both, [expected, expected[::-1]])


def test_overlong_reward_defaults_to_the_completion_length(tmp_path, tok):
    rows = [{"prompt": "q", "answer": "12"}]
    task = dataset_task(
        write(tmp_path, rows),
        tok,
        heldout_share=0.0,
        max_completion_len=8,
        reward="accuracy+overlong(cache=4)",
    )
    # lengths in tokens of the re-encoded text: 0 up to 8 - 4 = 4, then -1/4 per token
    ys = ["12", "12 12 12 12 12 12"]  # right (accuracy 1, short), no single answer (0, long)
    n = [len(tok.encode(y, False)) for y in ys]
    ids = [tok.encode(y, False) for y in ys]
    tokens = np.zeros((2, 20), np.int32)
    mask = np.zeros((2, 20), np.int32)
    for i, r in enumerate(ids):
        tokens[i, : len(r)], mask[i, : len(r)] = r, 1
    p = jax.tree_util.tree_map(lambda x: np.repeat(x, 2, axis=0), task.prompts("train"))
    expected = [
        acc + min(0.0, max(-1.0, (4 - k) / 4)) for acc, k in zip([1.0, 0.0], n, strict=True)
    ]
    np.testing.assert_allclose(np.asarray(task.score(p, tokens, mask)), expected)
    assert expected[1] < 0


def test_preference_rows_strings_and_messages(tmp_path, tok):
    rows = [
        {
            "prompt": "Say hi",
            "chosen": "Hello!",
            "rejected": "No.",
            "chosen_score": 1,
            "rejected_score": 0.5,
        },
        {"prompt": "Count", "chosen": "one two", "rejected": "many"},
    ]
    task = dataset_task(write(tmp_path, rows), tok, heldout_share=0.0)
    assert task.kind == "preference" and not task.has_score
    pairs = task.preference_pairs("train")
    eos = tok.eos_ids[0]
    assert real(pairs.chosen_tokens[1], pairs.chosen_mask[1]) == tok.encode("one two", False) + [
        eos
    ]
    assert real(pairs.rejected_tokens[0], pairs.rejected_mask[0]) == tok.encode("No.", False) + [
        eos
    ]
    np.testing.assert_array_equal(pairs.chosen_score, [1.0, np.nan])
    np.testing.assert_array_equal(pairs.rejected_score, [0.5, np.nan])
    sft = task.sft_data("train")  # SFT on a preference file trains on the chosen answers
    np.testing.assert_array_equal(sft.completion_tokens, pairs.chosen_tokens)
    with pytest.raises(ValueError, match="preference rows have no reward; pass reward="):
        task.score(task.prompts("train"), pairs.chosen_tokens, pairs.chosen_mask)
    conv = [
        {
            "prompt": [{"role": "user", "content": "Say hi"}],
            "chosen": [{"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "assistant", "content": "No."}],
        }
    ]
    ctask = dataset_task(write(tmp_path, conv, "conv.jsonl"), tok, heldout_share=0.0)
    cp = ctask.preference_pairs("train")
    im_end = tok.token_id("<|im_end|>")
    assert real(cp.prompt_tokens[0], cp.prompt_mask[0]) == tok.apply_chat_template(
        conv[0]["prompt"], tokenize=True
    )
    assert real(cp.rejected_tokens[0], cp.rejected_mask[0]) == tok.encode("No.", False) + [im_end]
    with pytest.raises(ValueError, match="preference_pairs needs prompt/chosen/rejected"):
        dataset_task(
            write(tmp_path, [{"prompt": "a", "answer": "1"}], "v.jsonl"), tok
        ).preference_pairs("train")


def test_length_limits_drop_and_truncate(tmp_path, tok):
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 3
    rows = [
        {"prompt": "Hi", "completion": "Hello"},
        {"prompt": long_prompt, "completion": "Hello"},
        {"prompt": "Hey", "completion": "The quick brown fox jumps over the lazy dog."},
    ]
    task = dataset_task(
        write(tmp_path, rows), tok, heldout_share=0.0, max_prompt_len=8, max_completion_len=5
    )
    assert task.stats == {"rows": 3, "train": 2, "heldout": 0, "dropped": 1, "truncated": 1}
    assert task.completion_len == 5
    data = task.sft_data("train")
    assert data.completion_tokens.shape == (2, 5)
    full = tok.encode(rows[2]["completion"], add_special_tokens=False)
    # cut to 5 tokens and no EOS; the short one keeps its EOS
    assert real(data.completion_tokens[1], data.completion_mask[1]) == full[:5]
    assert real(data.completion_tokens[0], data.completion_mask[0])[-1] == tok.eos_ids[0]
    with pytest.raises(ValueError, match="all 3 rows dropped"):
        dataset_task(write(tmp_path, rows, "b.jsonl"), tok, max_prompt_len=1)


def test_splits_n_file_order_and_eval_path(tmp_path, tok):
    rows = [{"prompt": f"q{i}", "answer": str(i)} for i in range(200)]
    task = dataset_task(write(tmp_path, rows), tok, heldout_share=0.25)
    train, held = task.examples("train"), task.examples("heldout")
    assert len(train) + len(held) == 200 and 20 < len(held) < 80
    assert not {q for q, _ in train} & {q for q, _ in held}
    order = [r["prompt"] for r in rows]
    assert [q for q, _ in train] == [q for q in order if q in dict(train)]  # file order
    assert task.examples("train", 5) == train[:5]
    assert task.prompts("train", 5).tokens.shape[0] == 5
    assert task.prompts("train", 10_000).tokens.shape[0] == len(train)
    assert task.prompts("train", 5) is task.prompts("train", 5)  # tokenised once, cached
    with pytest.raises(ValueError, match="read-only"):
        task.prompts("train", 5).tokens[0, 0] = 7  # so no caller can change another's rows
    ev = dataset_task(
        write(tmp_path, rows[:50]), tok, eval_path=write(tmp_path, rows[50:60], "e.jsonl")
    )
    assert ev.stats["train"] == 50 and ev.stats["heldout"] == 10
    assert [q for q, _ in ev.examples("heldout")] == order[50:60]
    with pytest.raises(ValueError, match="split 'heldout' has no rows"):
        dataset_task(write(tmp_path, rows[:3], "s.jsonl"), tok, heldout_share=0.0).prompts(
            "heldout"
        )
    with pytest.raises(ValueError, match="split must be"):
        task.prompts("test")
    prefs = write(tmp_path, [{"prompt": "a", "chosen": "b", "rejected": "c"}], "p.jsonl")
    with pytest.raises(ValueError, match="p.jsonl: rows have format 'preference', but"):
        dataset_task(write(tmp_path, rows[:5]), tok, eval_path=prefs)
    with pytest.raises(ValueError, match=r"heldout_share must be in \[0, 1\), got 1.0"):
        dataset_task(write(tmp_path, rows[:5]), tok, heldout_share=1.0)


def test_task_hashes_by_identity_and_is_a_static_argument(tmp_path, tok):
    path = write(tmp_path, [{"prompt": "a", "answer": "1"}])
    t1, t2 = dataset_task(path, tok), dataset_task(path, tok)
    assert t1 != t2 and hash(t1) != hash(t2) and t1 == t1
    assert isinstance(t1, DatasetTask) and t1.eos_ids == tok.eos_ids and t1.pad_id == tok.pad_id
    f = jax.jit(lambda task, x: x + task.prompt_len, static_argnums=0)
    assert int(f(t1, 1)) == 1 + t1.prompt_len
    cfg = t1.generation_config()
    assert cfg.eos_id == tok.eos_ids and cfg.max_new_tokens == t1.completion_len


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            ['{"prompt": "a", "answer": "1"}', '{"prompt": "b", "answer": 2}'],
            "data.jsonl:2: field 'answer' must be a string or a list of messages, got int '2'",
        ),
        (
            ['{"prompt": "a", "answer": "1"}', "", '{"prompt": "b"}'],
            "data.jsonl:3: field 'answer' is missing (format 'prompt/answer', from the first "
            "row's keys)",
        ),
        (
            ['{"prompt": "a", "answer": "1"}', '{"prompt": "b", "answer": "2"'],
            "data.jsonl:2: not valid JSON",
        ),
        (["[1, 2]"], "data.jsonl:1: a row must be a JSON object, got list"),
        (['{"text": "a"}'], "data.jsonl:1: cannot tell the row format from keys ['text']"),
        (
            ['{"messages": [{"role": "user", "content": "a"}, {"role": "assistant"}]}'],
            "data.jsonl:1: field 'messages[1].content' must be a string, got null",
        ),
        (
            ['{"messages": [{"role": "user", "content": "a"}]}'],
            "data.jsonl:1: field 'messages' must be a message list ending with an 'assistant'",
        ),
        (
            ['{"prompt": "a", "chosen": "b", "rejected": "c", "chosen_score": "x"}'],
            "data.jsonl:1: field 'chosen_score' must be a number, got str",
        ),
        (
            ['{"question": ["a"], "answer": "1"}'],
            "data.jsonl:1: field 'question' must be a string,",
        ),
        ([""], "data.jsonl: empty file (no rows)"),
    ],
)
def test_malformed_rows_name_file_line_and_field(tmp_path, tok, lines, message):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as e:
        dataset_task(str(path), tok)
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith(str(path).replace("data.jsonl", "") + message.split(":")[0])
    assert message in text


def test_empty_prompt_without_bos_is_an_error(tmp_path, tok):
    path = write(tmp_path, [{"prompt": "a", "answer": "1"}, {"prompt": "", "answer": "2"}])
    assert dataset_task(path, tok).stats["rows"] == 2  # the tiny tokenizer adds a BOS
    no_bos = type(tok)(tok.tokenizer, {"eos_token": "<|im_end|>"}, {})
    no_bos.tokenizer = copy.deepcopy(tok.tokenizer)
    no_bos.tokenizer.post_processor = None
    with pytest.raises(ValueError, match=r"data.jsonl:2: the prompt encodes to no tokens"):
        dataset_task(path, no_bos)


def test_parquet_rows_through_pyarrow(tmp_path, tok, monkeypatch):
    """The Parquet path with a stand-in ``pyarrow.parquet`` (pyarrow is optional): rows
    are numbered from 1 and checked like JSONL lines."""
    import sys
    import types

    records = [{"prompt": "a", "answer": "1"}, {"prompt": "b", "answer": 2}]
    table = types.SimpleNamespace(to_pylist=lambda: records)
    parquet = types.ModuleType("pyarrow.parquet")
    parquet.read_table = lambda path: table
    pyarrow = types.ModuleType("pyarrow")
    pyarrow.parquet = parquet
    monkeypatch.setitem(sys.modules, "pyarrow", pyarrow)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", parquet)
    path = str(tmp_path / "d.parquet")
    open(path, "wb").close()
    with pytest.raises(ValueError, match=r"d.parquet:2: field 'answer' must be a string"):
        read_rows(path)
    records[1]["answer"] = "2"
    assert [r.answer for r in read_rows(path)[1]] == ["1", "2"]


def test_missing_file_and_parquet_without_pyarrow(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_rows(str(tmp_path / "none.jsonl"))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "x.parquet").write_bytes(b"PAR1")
        with pytest.raises(ValueError, match="x.parquet: reading Parquet needs pyarrow"):
            read_rows(str(tmp_path / "x.parquet"))


@pytest.mark.parametrize("name", ["addition", "sorting", "preference"])
def test_write_jsonl_round_trip(tmp_path, tok, name):
    task = make_task(name)
    path = str(tmp_path / f"{name}.jsonl")
    assert write_jsonl(task, path, "train", 30, seed=3) == 30
    back = dataset_task(path, tok)
    # the written train rows hash into the train split again (same share, same hash)
    assert back.stats["train"] == 30 and back.stats["heldout"] == 0
    if name == "preference":
        pairs = task.preference_pairs("train", 30, seed=3)
        read = back.preference_pairs("train")
        np.testing.assert_allclose(read.chosen_score, pairs.chosen_score)
        chosen = [tok.decode(real(read.chosen_tokens[i], read.chosen_mask[i])) for i in range(30)]
        from jaxrl.llm.tasks import TOKENIZER

        assert chosen == [TOKENIZER.decode(pairs.chosen_tokens[i]) for i in range(30)]
    else:
        assert back.examples("train") == task.examples("train", 30, seed=3)
        p = back.prompts("train")
        assert [tok.decode(real(p.tokens[i], p.mask[i])) for i in range(30)] == [
            q for q, _ in task.examples("train", 30, seed=3)
        ]


def test_whole_conversation_preferences_take_the_shared_prompt(tmp_path, tok):
    user = {"role": "user", "content": "Say hi"}
    row = {
        "chosen": [user, {"role": "assistant", "content": "Hello!"}],
        "rejected": [user, {"role": "assistant", "content": "No."}],
        "score_chosen": 8.0,
        "score_rejected": 2.0,
    }
    with_prompt = {**row, "prompt": "Say hi"}  # H4 style: a prompt and whole conversations
    for name, r in (("implicit.jsonl", row), ("h4.jsonl", with_prompt)):
        task = dataset_task(write(tmp_path, [r], name), tok, heldout_share=0.0)
        pairs = task.preference_pairs("train")
        assert real(pairs.prompt_tokens[0], pairs.prompt_mask[0]) == tok.apply_chat_template(
            [user], tokenize=True
        )
        im_end = tok.token_id("<|im_end|>")
        chosen = real(pairs.chosen_tokens[0], pairs.chosen_mask[0])
        assert chosen == tok.encode("Hello!", False) + [im_end]
        assert pairs.chosen_score.tolist() == [8.0] and pairs.rejected_score.tolist() == [2.0]
    bad = {"chosen": "Hello!", "rejected": "No."}
    with pytest.raises(
        ValueError, match=r"data.jsonl:1: field 'prompt' is missing \(needed unless"
    ):
        dataset_task(write(tmp_path, [bad]), tok)


def test_math_problem_solution_reference_is_boxed(tmp_path, tok):
    rows = [{"problem": "Half of 1?", "solution": "It is one half, so \\boxed{0.5}."}]
    task = dataset_task(write(tmp_path, rows), tok, heldout_share=0.0)
    assert task.format == "problem/solution" and task.kind == "verifiable"
    ys = ["\\boxed{1/2}", "\\boxed{0.4}"]
    ids = [tok.encode(y, False) + [tok.eos_ids[0]] for y in ys]
    tokens = np.zeros((2, 16), np.int32)
    mask = np.zeros((2, 16), np.int32)
    for i, r in enumerate(ids):
        tokens[i, : len(r)], mask[i, : len(r)] = r, 1
    p = jax.tree_util.tree_map(lambda x: np.repeat(x, 2, axis=0), task.prompts("train"))
    assert np.asarray(task.score(p, tokens, mask)).tolist() == [1.0, 0.0]


def test_user_reward_module_scores_a_preference_dataset_under_jit(tmp_path, tok, monkeypatch):
    (tmp_path / "brevity_reward.py").write_text(
        "def brevity(prompts, completions, answers):\n"
        "    return [float(p.count('o')) - len(c) for p, c in zip(prompts, completions)]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "brevity_reward", raising=False)
    rows = [{"prompt": "Say hi to Bob", "chosen": "Hi Bob!", "rejected": "No."}]
    task = dataset_task(
        write(tmp_path, rows), tok, heldout_share=0.0, reward="brevity_reward:brevity"
    )
    assert task.has_score
    pairs = task.preference_pairs("train")
    got = jax.jit(task.score)(task.prompts("train"), pairs.chosen_tokens, pairs.chosen_mask)
    # the reward sees the prompt as written and the completion decoded without its EOS
    np.testing.assert_allclose(np.asarray(got), [2.0 - len("Hi Bob!")])
