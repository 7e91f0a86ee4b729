"""examples/llm_end_to_end.py: the inputs it writes encode the task.

The whole pipeline at its tiny budget (every stage on the files it writes, then the export
round trip, which exits 1 unless transformers generates jaxrl's greedy ids) runs in
tests/test_docs.py, as every example does under JAXRL_QUICK=1; it is not run twice."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from jaxrl.llm.data import dataset_task
from jaxrl.llm.rewards import make_reward
from jaxrl.llm.testing import arithmetic_score

pytest.importorskip("transformers")
pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llm_end_to_end.py"


def _example():
    spec = importlib.util.spec_from_file_location("llm_end_to_end", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_inputs_encode_the_task(tmp_path):
    example = _example()
    paths = example.write_inputs(str(tmp_path), max_operand=4, width=32, seed=0)
    sft, rl, heldout, prefs = (_rows(paths[k]) for k in ("sft", "rl", "heldout", "prefs"))
    # every question of operands 0..4 in 4 phrasings once: 16 held out, 42 + 42 trained on
    assert (len(sft), len(rl), len(heldout), len(prefs)) == (42, 42, 16, 42)
    assert len({r["prompt"] for r in sft + rl + heldout}) == 100
    assert [r["prompt"] for r in prefs] == [r["prompt"] for r in rl]
    train = sft + rl
    # the reference answers score 1 under the exact-answer reward and the hidden score
    prompts = [r["prompt"] for r in train]
    answers = [r["answer"] for r in train]
    np.testing.assert_array_equal(make_reward("accuracy")(prompts, answers, answers), 1.0)
    np.testing.assert_array_equal(arithmetic_score(prompts, answers, answers), 1.0)
    # a preference label is the hidden score: chosen right, rejected a near miss
    p = [r["prompt"] for r in prefs]
    np.testing.assert_array_equal(arithmetic_score(p, [r["chosen"] for r in prefs], p), 1.0)
    np.testing.assert_array_equal(arithmetic_score(p, [r["rejected"] for r in prefs], p), 0.0)
    # the tokenizer splits digits, so every answer's number is one token per digit
    task = dataset_task(paths["sft"], paths["model"], chat_template=True)
    tok = task.tokenizer
    assert [tok.decode([i]) for i in tok.encode("#### 148", add_special_tokens=False)][-3:] == [
        "1",
        "4",
        "8",
    ]
    assert task.stats["dropped"] == 0 and task.stats["truncated"] == 0
