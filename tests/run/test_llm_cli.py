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

    toy = ModelConfig(d_model=16, num_heads=2, num_layers=1, d_ff=32)  # any toy model
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
        (
            ["grpo", "--task", "addition", "--reward", f"rm:{tmp_path}", "--reward-model", "x"],
            "give one reward model",
        ),
        (
            ["sft", "--model", model_dir, "--data", str(rows), "--reward", "acuracy"],
            "unknown reward 'acuracy'; known: accuracy",
        ),
        (["sft", "--task", "addition", "--dtype", "bfloat16"], "applies to --model DIR"),
        (
            ["sft", "--model", model_dir, "--data", str(rows), "--dtype", "float16"],
            "dtype must be float32 or bfloat16, got 'float16'",
        ),
        (["sfft", "--task", "addition"], "unknown stage 'sfft' (did you mean 'sft'?)"),
        (["sft", str(tmp_path)], "unexpected argument"),
    ]
    same = tmp_path / "same.jsonl"  # one prompt: the hashed held-out split is empty
    same.write_text(json.dumps({"prompt": "2+3=", "answer": "5"}) + "\n")
    cases.append(
        (["sft", "--model", model_dir, "--data", str(same)], "no heldout rows are left (1 rows,")
    )
    cases.append((["sft", "--model", model_dir, "--data", str(same)], "give --eval-data FILE"))
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


# --- every stage on a model directory and a JSONL file --------------------------------------

FEW = ["--no-progress", "--set", "num_steps=2", "--set", "eval_every=2", "--set", "eval_prompts=4"]
FEW_PAIRS = [*FEW[:5], "--set", "eval_pairs=4"]  # the reward model evaluates pairs only


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    math = [{"prompt": f"Two plus {a} is", "answer": str(2 + a)} for a in range(30)]
    prefs = [
        {"prompt": f"Hello {i}! How are you?", "chosen": "I am fine, thank you.", "rejected": "dog"}
        for i in range(30)
    ]
    return (
        _jsonl(root / "math.jsonl", math[:24]),
        _jsonl(root / "math_eval.jsonl", math[24:]),
        _jsonl(root / "prefs.jsonl", prefs[:24]),
        _jsonl(root / "prefs_eval.jsonl", prefs[24:]),
    )


def _finite_metrics(run) -> dict:
    import csv

    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 2
    for name in ("loss", "reward_mean", "actor_loss", "critic_loss"):
        if name in rows[0]:
            assert all(np.isfinite(float(r[name])) for r in rows), name
    return rows[-1]


def test_each_stage_runs_on_a_model_directory_and_a_jsonl_file(
    model_dir, files, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("JAXRL_QUICK", "1")  # the README's budgets, with the new flags
    math, math_eval, prefs, prefs_eval = files
    sft, rm, dpo, grpo, rlhf = (tmp_path / n for n in ("sft", "rm", "dpo", "grpo", "rlhf"))
    argv = ["llm", "sft", "--model", model_dir, "--data", str(math), "--eval-data", str(math_eval)]
    assert (
        main([*argv, "--lora-rank", "2", "--max-completion-len", "4", "--out", str(sft), *FEW]) == 0
    )
    assert "data: 30 rows, 24 train, 6 heldout, 0 dropped" in capsys.readouterr().out
    for name in ("config.json", "metrics.csv", "evals.csv", "summary.json", "curves.png"):
        assert (sft / name).is_file(), name
    for name in ("params.msgpack", "model_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (sft / "model" / name).is_file(), name
    assert (sft / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((sft / "model" / "model_config.json").read_text())["lora_rank"] == 0
    summary = json.loads((sft / "summary.json").read_text())
    assert summary["data_train"] == 24 and np.isfinite(summary["final_train_loss"])
    _finite_metrics(sft)

    # grpo from the SFT run: its model, tokenizer and data file carry over
    argv = ["llm", "grpo", "--from", str(sft), "--reward", "accuracy", "--out", str(grpo)]
    assert main([*argv, *FEW, "--set", "num_prompts=2", "--set", "group_size=2"]) == 0
    record = json.loads((grpo / "config.json").read_text())
    assert record["inputs"]["data"] == str(math.resolve())
    assert (grpo / "model" / "tokenizer.json").is_file()
    _finite_metrics(grpo)

    prefs = ["--data", str(prefs), "--eval-data", str(prefs_eval)]
    assert main(["llm", "rm", "--model", model_dir, *prefs, "--out", str(rm), *FEW_PAIRS]) == 0
    _finite_metrics(rm)
    argv = ["llm", "dpo", "--model", model_dir, *prefs, "--out", str(dpo), *FEW, *FEW_PAIRS[5:]]
    assert main([*argv, "--lora-rank", "2"]) == 0
    _finite_metrics(dpo)

    argv = ["llm", "rlhf", "--from", str(sft), "--reward", f"rm:{rm}", "--out", str(rlhf)]
    assert main([*argv, *FEW, "--set", "num_prompts=2"]) == 0
    assert json.loads((rlhf / "config.json").read_text())["reward_model"] == str(rm)
    _finite_metrics(rlhf)
    assert main(["llm", "export", str(rlhf), "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "tokenizer.json").is_file()


# --- --resume: a run stopped after its first checkpoint ends as the uninterrupted one ------


def _stop_after_first_evaluation(stage, total, enabled):
    def callback(step, numbers):
        raise KeyboardInterrupt  # Ctrl-C, right after the checkpoint of update `step`

    callback.stop = lambda: None
    return callback


def test_resume_of_a_stopped_run_equals_the_uninterrupted_run(
    model_dir, files, tmp_path, monkeypatch, capsys
):
    import jaxrl.run.llm

    math, math_eval, _, _ = files
    argv = ["llm", "sft", "--model", model_dir, "--data", str(math), "--eval-data", str(math_eval)]
    argv += ["--no-progress", "--lora-rank", "2", "--max-completion-len", "4"]
    argv += ["--set", "num_steps=4", "--set", "eval_every=2", "--set", "eval_prompts=4"]
    argv += ["--set", "batch_size=8"]  # 24 rows: update 4 starts the second epoch
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main([*argv, "--out", str(whole)]) == 0
    with monkeypatch.context() as m:
        m.setattr(jaxrl.run.llm, "_progress", _stop_after_first_evaluation)
        assert main([*argv, "--out", str(stopped)]) == 130
    err = capsys.readouterr().err
    assert f"stopped after update 2; metrics so far in {stopped}/metrics.csv" in err
    assert f"continue with: jaxrl llm sft --resume {stopped}" in err
    assert len((stopped / "metrics.csv").read_text().splitlines()) == 3  # header + 2 updates
    assert main(["llm", "sft", "--resume", str(stopped), "--no-progress"]) == 0
    assert (stopped / "metrics.csv").read_text() == (whole / "metrics.csv").read_text()
    a, b = (json.loads((d / "summary.json").read_text()) for d in (whole, stopped))
    for k in a:
        if "wall_time" not in k:
            assert a[k] == b[k], k
    assert main(["llm", "dpo", "--resume", str(stopped)]) == 2
    assert "a jaxrl llm sft run, not dpo" in _error_line(capsys)
