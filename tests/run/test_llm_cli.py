"""``jaxrl llm`` on a user's model directory and data file: stages, resume, export, bad input.

Every model here is ``jaxrl.llm.testing.tiny_model_dir`` (a random 2-layer width-32
Llama with a BPE tokenizer and chat template), every data file a few JSONL rows written
by the test; stages run a few updates in process through ``jaxrl.cli.main``.
"""

import json

import jax
import numpy as np
import pytest

from jaxrl.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from jaxrl.llm.testing import tiny_model_dir

    return tiny_model_dir(str(tmp_path_factory.mktemp("tiny") / "model"))


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# --- export: LoRA merged, transformers reads it and generates the same greedy text ---------


def _lora_run(model_dir, run):
    """A run directory whose model/ holds a LoRA model with non-zero adapters."""
    from jaxrl.llm.checkpoint import load_pretrained
    from jaxrl.llm.export import copy_tokenizer
    from jaxrl.llm.lora import add_lora
    from jaxrl.llm.transformer import save_model

    config, params = load_pretrained(model_dir)
    config, params = add_lora(config, params, jax.random.PRNGKey(1), rank=4, alpha=8.0)

    def perturb(path, leaf):  # B = 0 would make the merge a no-op: give it weight
        if path[-1].key == "lora_b":
            seed = len(jax.tree_util.keystr(path))
            return 0.2 * jax.random.normal(jax.random.PRNGKey(seed), leaf.shape)
        return leaf

    params = jax.tree_util.tree_map_with_path(perturb, params)
    save_model(str(run / "model"), params, config)
    copy_tokenizer(model_dir, str(run / "model"))
    return config, params


def test_export_merges_lora_and_transformers_generates_the_same_greedy_text(
    model_dir, tmp_path, capsys
):
    import torch
    import transformers

    from jaxrl.llm.checkpoint import forward
    from jaxrl.llm.generate import GenerationConfig, generate
    from jaxrl.llm.tokenizer import load_tokenizer

    run, hf = tmp_path / "run", tmp_path / "hf"
    config, params = _lora_run(model_dir, run)
    assert main(["llm", "export", str(run), "--out", str(hf)]) == 0
    assert "LoRA rank 4 merged" in capsys.readouterr().out
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (hf / name).is_file(), name

    tokenizer = load_tokenizer(str(hf))
    prompts = ["The quick brown fox", "Two plus three is"]
    tokens, mask = tokenizer.encode_batch(prompts)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(hf)).eval()
    with torch.no_grad():
        ref = model(
            input_ids=torch.tensor(tokens[:1, mask[0] > 0], dtype=torch.long)
        ).logits.numpy()
    ours = np.asarray(forward(config, params, tokens[:1, mask[0] > 0], mask[:1, mask[0] > 0]))
    assert np.abs(ours).max() > 0.1
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)  # the adapters are in the weights

    # greedy ids: the LoRA model in jaxrl against the exported model in transformers
    new = 6
    gen = generate(
        params,
        config,
        GenerationConfig(max_new_tokens=new, greedy=True, eos_id=(-1,), pad_id=tokenizer.pad_id),
        tokens,
        mask,
        jax.random.PRNGKey(0),
    )
    for i, text in enumerate(prompts):
        ids = tokenizer.encode(text)
        with torch.no_grad():
            out = model.generate(
                torch.tensor([ids]), max_new_tokens=new, do_sample=False, eos_token_id=None
            )
        assert out[0, len(ids) :].tolist() == np.asarray(gen.tokens[i]).tolist()

    # and `jaxrl llm generate --model DIR` reads the export: the same text as transformers
    assert main(
        ["llm", "generate", "--model", str(hf), "--prompt", prompts[1], "--greedy"]
        + ["--max-new-tokens", "4"]
    ) == 0  # fmt: skip
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    ids = tokenizer.encode(prompts[1])
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=4, do_sample=False)
    completion = out[0, len(ids) :].tolist()
    stop = set(tokenizer.eos_ids)
    cut = next((j + 1 for j, t in enumerate(completion) if t in stop), len(completion))
    assert printed == tokenizer.decode(completion[:cut]).strip() or printed == tokenizer.decode(
        completion[:cut]
    )


def test_export_refuses_a_toy_model_and_a_missing_run(tmp_path, capsys):
    from jaxrl.llm.transformer import ModelConfig, init_params, save_model

    toy = ModelConfig()
    save_model(str(tmp_path / "toy" / "model"), init_params(toy, jax.random.PRNGKey(0)), toy)
    assert main(["llm", "export", str(tmp_path / "toy"), "--out", str(tmp_path / "hf")]) == 2
    assert "toy transformer, which has no Hugging Face format" in _error_line(capsys)
    assert main(["llm", "export", str(tmp_path / "nope"), "--out", str(tmp_path / "hf")]) == 2
    assert _error_line(capsys) == f"error: {tmp_path / 'nope'}: no such directory"
    assert main(["llm", "export", str(tmp_path / "toy")]) == 2
    assert "--out" in _error_line(capsys)


# --- bad input: one line, exit 2, before anything compiles ---------------------------------


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"prompt": "2+3=", "answer": "5"}) + "\n")
    return path


def test_bad_inputs_answer_one_line_and_exit_2(model_dir, rows, tmp_path, capsys):
    missing = tmp_path / "missing"
    cases = [
        (["sft", "--model", str(missing), "--data", str(rows)], f"--model {missing}: no such"),
        (["sft", "--model", str(tmp_path), "--data", str(rows)], "no config.json there"),
        (["sft", "--model", model_dir, "--data", str(missing)], f"--data {missing}: no such file"),
        (["sft", "--task", "addition", "--data", str(rows)], "a stage trains on one of them"),
        (["sft", "--data", str(rows)], "needs a pretrained model and its tokenizer"),
        (["sft", "--task", "addition", "--lora-rank", "4"], "--lora-rank 4 needs a pretrained"),
        (["sft", "--task", "addition", "--reward", "accuracy"], "scores the rows of --data"),
        (["sft", "--model", model_dir, "--from", str(tmp_path)], "give one starting model"),
        (["sft", "--model", model_dir, "--eval-data", str(rows)], "needs --data FILE"),
        (["dpo", "--data", str(rows)], "needs a starting policy"),
        (["grpo", "--from", str(missing)], f"--from {missing}: no such directory"),
        (["sft", "--resume", str(missing)], f"--resume {missing}: no such directory"),
        (["sft", "--resume", str(tmp_path), "--data", str(rows)], "; drop --data"),
        (["sft", "--task", "addition", "--lora-rank", "-1"], "--lora-rank must be a whole"),
        (["sft", "--task", "addition", "--reward-model", str(tmp_path)], "for grpo and rlhf"),
        (["sfft", "--task", "addition"], "unknown stage 'sfft' (did you mean 'sft'?)"),
        (["sft", str(tmp_path)], "unexpected argument"),
    ]
    for argv, text in cases:
        out = [] if "--resume" in argv else ["--out", str(tmp_path / "run")]
        assert main(["llm", *argv, *out]) == 2, argv
        line = _error_line(capsys)
        assert line.startswith("error: ") and text in line, (argv, line)
    assert not (tmp_path / "run").exists()  # nothing was written


# --- jaxrl llm data: a toy task written as JSONL --------------------------------------------


def test_data_writes_a_toy_task_as_jsonl_rows(tmp_path, capsys):
    from jaxrl.llm.tasks import make_task

    out = tmp_path / "sub" / "addition.jsonl"
    argv = ["llm", "data", "--task", "addition", "--split", "heldout", "--n", "12"]
    assert main([*argv, "--set", "num_digits=1", "--out", str(out)]) == 0
    assert f"wrote 12 rows of addition (heldout) to {out}" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12
    task = make_task("addition", num_digits=1)
    for row in rows:  # each row: an addition question of one-digit numbers and its sum
        a, b = (int(x) for x in row["prompt"].split("+"))
        assert a < 10 and b < 10 and task.is_heldout(row["prompt"]) is True
        assert int(row["answer"]) == a + b
    assert main(["llm", "data", "--task", "adition", "--out", str(out)]) == 2
    assert "unknown task 'adition' (did you mean 'addition'?)" in _error_line(capsys)
    assert main(["llm", "data", "--task", "addition", "--split", "test", "--out", str(out)]) == 2
    assert _error_line(capsys) == "error: --split must be train or heldout, got 'test'"
