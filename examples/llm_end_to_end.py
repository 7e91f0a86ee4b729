"""From a text corpus to an exported model on a CPU: tokenizer, SFT, GRPO, DPO, export.

Every stage runs on files, the way it would on a downloaded model and a dataset:

1. Data: every arithmetic question of operands 0–19 in four phrasings (``What is 13 +
   8?``, ``Add 13 and 8.``, ...: 1,600) with GSM8K-style answers (``#### 21``), written
   as JSONL: ``heldout.jsonl`` (``prompt``/``answer`` rows, 256 questions), ``sft.jsonl``
   (demonstrations) and ``rl.jsonl`` (RL prompts; half the rest each), and
   ``prefs.jsonl`` / ``prefs_heldout.jsonl`` (``prompt``/``chosen``/``rejected`` on the
   RL and held-out questions: the right sum against a near miss).
2. Model: a byte-level BPE tokenizer trained on the corpus with ``tokenizers`` (digits
   split one per token, as Llama 3 and Qwen do) and a randomly initialised tiny
   Llama-architecture model, saved as a Hugging Face directory (``config.json``,
   ``model.safetensors``, ``tokenizer.json``, chat template, stop tokens). Rows are
   encoded as plain text (``CHAT`` switches to the chat template).
3. SFT from that directory on ``sft.jsonl``, deliberately brief (300 updates of 64
   rows): the model learns the format and part of the skill.
4. GRPO from the SFT model on ``rl.jsonl`` with the exact-answer reward (``accuracy``:
   the number after ``####`` against the reference's), held-out greedy accuracy before
   and after.
5. DPO (with RPO's NLL term on the chosen answer) from the SFT model on
   ``prefs.jsonl``; its hidden score is the share of sampled
   answers that are right (``jaxrl.llm.testing:arithmetic_score``, which reads the sum off
   the prompt), which the preference labels encode but DPO never sees.
6. Export of the GRPO model (``jaxrl.llm.export``) and a round trip: transformers loads the
   directory and its greedy completions of held-out prompts equal jaxrl's, token for token.

Run: ``python examples/llm_end_to_end.py`` (full budget) or ``--quick`` (tiny budget:
checks the plumbing, not the learning). ``benchmarks/llm_e2e.py`` runs it for several
seeds; benchmarks/RESULTS.md (section llm_e2e) has its numbers and wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from jaxrl.llm.checkpoint import load_pretrained, save_pretrained
from jaxrl.llm.data import dataset_task
from jaxrl.llm.dpo import DPOConfig, train_dpo
from jaxrl.llm.export import copy_tokenizer, export_run
from jaxrl.llm.generate import generate
from jaxrl.llm.grpo import grpo_preset, train_grpo
from jaxrl.llm.sft import SFTConfig, train_sft
from jaxrl.llm.testing import (
    CHAT_TEMPLATE,
    arithmetic_rows,
    bpe_tokenizer,
    tiny_model_config,
    write_tokenizer,
)
from jaxrl.llm.transformer import init_params, save_model

# JAXRL_QUICK=1 (tests/test_docs.py runs every example with it) means --quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"

# Budgets: SFT updates, GRPO steps, DPO updates, largest operand, model width and layers,
# rows per SFT/DPO update, GRPO prompts per step and completions per prompt. The quick
# model has one layer: the layers are a Python loop, so each one is compiled again in every
# program (SFT, GRPO, DPO, generation), and compiling is most of a quick run.
FULL = {
    "sft_steps": 300, "grpo_steps": 576, "dpo_steps": 60, "max_operand": 19, "width": 64,
    "num_layers": 2, "batch_size": 64, "grpo_prompts": 32, "group_size": 8,
}  # fmt: skip
QUICK_BUDGET = {
    "sft_steps": 2, "grpo_steps": 2, "dpo_steps": 2, "max_operand": 4, "width": 32,
    "num_layers": 1, "batch_size": 8, "grpo_prompts": 4, "group_size": 4,
}  # fmt: skip
HIDDEN_SCORE = "jaxrl.llm.testing:arithmetic_score"
# Plain prompts (``<|bos|>What is 13 + 8?`` → ``#### 21<|eos|>``), as a base model is
# fine-tuned: 13 prompt tokens instead of the chat rendering's 21, which the 2-core budget
# feels. True renders every row with the chat template instead.
CHAT = False


def _write_jsonl(path: str, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def _near_miss(answer: str, rng: np.random.Generator) -> str:
    """A wrong answer a weak model gives: off by one or ten, or its digits swapped."""
    n = int(answer.removeprefix("#### "))
    options = [n + 1, abs(n - 1), n + 10, abs(n - 10), int(str(n)[::-1])]
    wrong = [m for m in options if m != n]
    return f"#### {wrong[int(rng.integers(len(wrong)))]}"


def write_inputs(
    out: str, max_operand: int, width: int, seed: int = 0, num_layers: int = 2
) -> dict[str, str]:
    """Writes the JSONL files and the model directory under ``out``; returns their paths.

    Args:
        out: output directory.
        max_operand: largest operand; every distinct question (``4 · (max_operand + 1)²``
            of them) is used once: a sixth of them, at most 256, held out; of the rest, half
            are SFT demonstrations (``sft.jsonl``) and half RL prompts (``rl.jsonl``, also the
            prompts of the preference pairs).
        width: the model's ``d_model`` (4 heads, 2 of them key/value).
        seed: seed of the split, the preference labels and the initial weights.
        num_layers: the model's decoder layers.
    """
    os.makedirs(out, exist_ok=True)
    rows = arithmetic_rows(None, seed=seed, max_operand=max_operand)
    num_heldout = min(256, len(rows) // 6)
    heldout, train = rows[:num_heldout], rows[num_heldout:]
    # GRPO learns from prompts whose reward varies across a group. On the SFT rows, which
    # SFT repeats for dozens of epochs, every sample is right: no signal, and Adam's
    # steps of size ~lr on the noise lowered held-out accuracy by 15 points (3 seeds).
    # So, as in practice (few demonstrations, many prompts with checkable answers), RL
    # and DPO get prompts SFT never saw.
    sft_rows, rl_rows = train[: len(train) // 2], train[len(train) // 2 :]
    rng = np.random.default_rng(seed + 1)

    def pairs(rows):
        return [
            {"prompt": r["prompt"], "chosen": r["answer"], "rejected": _near_miss(r["answer"], rng)}
            for r in rows
        ]

    files = {
        "sft": sft_rows,
        "rl": rl_rows,
        "heldout": heldout,
        "prefs": pairs(rl_rows),
        "prefs_heldout": pairs(heldout),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = os.path.join(out, f"{name}.jsonl")
        _write_jsonl(paths[name], content)

    # The tokenizer learns its merges from the texts the model will see, plain and chat.
    import jinja2

    template = jinja2.Template(CHAT_TEMPLATE)
    corpus = [
        template.render(
            messages=[
                {"role": "user", "content": r["prompt"]},
                {"role": "assistant", "content": r["answer"]},
            ],
            bos_token="",
        )
        for r in train
    ] + [f"{r['prompt']}{r['answer']}" for r in train]
    tokenizer = bpe_tokenizer(corpus, vocab_size=384)
    config = tiny_model_config(
        "llama",
        tokenizer.get_vocab_size(),
        d_model=width,
        head_dim=width // 4,
        d_ff=4 * width,
        max_len=64,
        num_layers=num_layers,
    )
    paths["model"] = os.path.join(out, "base-model")
    save_pretrained(paths["model"], config, init_params(config, jax.random.PRNGKey(seed)))
    write_tokenizer(paths["model"], tokenizer)
    return paths


def load_tasks(paths: dict[str, str]) -> dict:
    """The JSONL files as tasks: ``sft`` and ``rl`` (demonstrations and RL prompts, each
    with the held-out file, reward ``accuracy``) and ``prefs`` (preference pairs, scored
    by the hidden ``arithmetic_score``).

    Rows are encoded as plain text, or rendered with the chat template when ``CHAT``.
    """
    sft, rl = (
        dataset_task(
            paths[name],
            paths["model"],
            eval_path=paths["heldout"],
            reward="accuracy",
            chat_template=CHAT,
        )
        for name in ("sft", "rl")
    )
    prefs = dataset_task(
        paths["prefs"],
        paths["model"],
        eval_path=paths["prefs_heldout"],
        reward=HIDDEN_SCORE,
        chat_template=CHAT,
    )
    return {"sft": sft, "rl": rl, "prefs": prefs}


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run_sft(paths, tasks, budget, seed: int, log=print):
    """SFT from the base model directory on ``sft.jsonl``; returns ``(result, seconds)``."""
    steps = budget["sft_steps"]
    config = SFTConfig(
        num_steps=steps,
        eval_every=steps,
        batch_size=budget["batch_size"],
        learning_rate=1e-3,
        warmup_steps=min(50, steps // 4),
        eval_prompts=256,
    )

    def progress(step, n):
        log(f"  SFT {step:4d}: loss {n['loss']:.3f}, held-out accuracy {n['heldout_accuracy']:.3f}")

    return _timed(
        train_sft,
        config,
        jax.random.PRNGKey(seed),
        progress,
        init_from=paths["model"],
        task=tasks["sft"],
    )


def run_grpo(sft, tasks, budget, seed: int, log=print):
    """GRPO from the SFT model, reward ``accuracy``; returns ``(result, seconds)``."""
    steps = budget["grpo_steps"]
    config = grpo_preset(
        "grpo",
        num_steps=steps,
        num_prompts=budget["grpo_prompts"],
        group_size=budget["group_size"],
        eval_every=max(steps // 4, 1) if steps % 4 == 0 else steps,
        eval_prompts=256,
        learning_rate=3e-4,  # a weak SFT model: see examples/grpo_verifiable.py
    )

    def progress(step, n):
        log(
            f"  GRPO {step:4d}: reward {n['reward_mean']:.3f}, held-out greedy accuracy "
            f"{n['accuracy']:.3f}, KL {n['kl_ref']:.2f}"
        )

    return _timed(
        train_grpo,
        config,
        jax.random.PRNGKey(seed + 1000),
        policy=sft,
        task=tasks["rl"],
        progress_callback=progress,
    )


def run_dpo(sft, tasks, budget, seed: int, log=print):
    """DPO from the SFT model on ``prefs.jsonl``; returns ``(result, seconds)``."""
    steps = budget["dpo_steps"]
    config = DPOConfig(
        num_steps=steps,
        eval_every=steps,
        batch_size=budget["batch_size"],
        beta=0.1,
        learning_rate=3e-4,
        # RPO: DPO plus the chosen answer's NLL. Plain DPO (lr 3e-4, pairs on the SFT
        # prompts) lowered the hidden score by 0.16 (3 seeds): both log-probs fall.
        nll_coef=1.0,
        warmup_steps=min(10, steps // 4),
        eval_pairs=256,
        eval_prompts=256,
    )

    def progress(step, n):
        log(f"  DPO {step:4d}: hidden score {n['score']:.3f}, margin {n['train_margin']:.2f}")

    return _timed(
        train_dpo,
        config,
        jax.random.PRNGKey(seed + 2000),
        policy=sft,
        progress_callback=progress,
        task=tasks["prefs"],
    )


def export_and_compare(result, paths, out: str, num_prompts: int = 8) -> dict:
    """Exports ``result`` as a Hugging Face directory and checks it in transformers.

    The model goes to ``out/run/model`` (a jaxrl run directory, the tokenizer beside it),
    then :func:`jaxrl.llm.export.export_run` writes ``out/export``. transformers loads
    that directory; greedy completions of ``num_prompts`` held-out prompts are compared
    token for token with jaxrl's generation from the exported weights.

    Returns:
        ``{"export_dir", "same_greedy_ids", "num_prompts", "example"}``.
    """
    import torch
    import transformers

    run_model = os.path.join(out, "run", "model")
    save_model(run_model, result.params, result.model_config)
    copy_tokenizer(paths["model"], run_model)
    export_dir = os.path.join(out, "export")
    export_run(os.path.join(out, "run"), export_dir)

    task = dataset_task(paths["heldout"], export_dir, chat_template=CHAT)
    prompts = task.prompts("heldout", num_prompts)
    config, params = load_pretrained(export_dir)
    gen_config = task.generation_config(greedy=True)
    ours = generate(params, config, gen_config, prompts.tokens, prompts.mask, jax.random.PRNGKey(0))
    ours_ids = [
        np.asarray(t)[np.asarray(m) > 0].tolist()
        for t, m in zip(ours.tokens, ours.mask, strict=True)
    ]

    model = transformers.AutoModelForCausalLM.from_pretrained(export_dir, dtype=torch.float32)
    hf_tok = transformers.AutoTokenizer.from_pretrained(export_dir)
    theirs_ids = []
    for tokens, mask in zip(prompts.tokens, prompts.mask, strict=True):
        ids = torch.tensor(np.asarray(tokens)[np.asarray(mask) > 0][None].astype(np.int64))
        new = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=gen_config.max_new_tokens,
            do_sample=False,
            eos_token_id=list(task.eos_ids),
            pad_token_id=task.pad_id,
        )[0, ids.shape[1] :].tolist()
        theirs_ids.append(new)
    return {
        "export_dir": export_dir,
        "same_greedy_ids": ours_ids == theirs_ids,
        "num_prompts": num_prompts,
        "example": hf_tok.decode(theirs_ids[0], skip_special_tokens=True),
    }


def run_pipeline(out: str, budget: dict, seed: int = 0, log=print) -> dict:
    """All six steps; returns the numbers (accuracies, scores, seconds, export check)."""
    start = time.perf_counter()
    paths = write_inputs(
        out, budget["max_operand"], budget["width"], seed, budget.get("num_layers", 2)
    )
    tasks = load_tasks(paths)
    log(f"data and model: {paths['model']} (SFT rows {tasks['sft'].stats})")
    sft, sft_s = run_sft(paths, tasks, budget, seed, log)
    grpo, grpo_s = run_grpo(sft, tasks, budget, seed, log)
    dpo, dpo_s = run_dpo(sft, tasks, budget, seed, log)
    export = export_and_compare(grpo, paths, out)
    step_time = np.asarray(grpo.metrics.get("step_time", [np.nan]), np.float64)
    return {
        "seed": seed,
        "sft_accuracy": float(grpo.summary["before_accuracy"]),
        "grpo_accuracy": float(grpo.summary["accuracy"]),
        "sft_heldout_accuracy": float(sft.summary.get("heldout_accuracy", float("nan"))),
        "dpo_score_before": float(dpo.evals["score"][0]),
        "dpo_score_after": float(dpo.evals["score"][-1]),
        "grpo_kl": float(grpo.summary.get("kl_ref", float("nan"))),
        "seconds": {
            "sft": sft_s,
            "grpo": grpo_s,
            "dpo": dpo_s,
            "total": time.perf_counter() - start,
            # the first GRPO step compiles; the median of the others is the step itself
            "grpo_step_median": float(np.median(step_time[1:])) if step_time.size > 1 else None,
            "grpo_first_step": float(step_time[0]),
        },
        "export": export,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=QUICK, help="tiny budgets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=None, help="output directory (default runs/llm_end_to_end[-quick])"
    )
    for name in FULL:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    budget = dict(QUICK_BUDGET if args.quick else FULL)
    budget.update({k: getattr(args, k) for k in FULL if getattr(args, k) is not None})
    out = args.out or (
        "runs/examples-quick/llm_end_to_end" if args.quick else "runs/llm_end_to_end"
    )
    r = run_pipeline(out, budget, args.seed)
    print(
        f"\nheld-out greedy accuracy: SFT {r['sft_accuracy']:.3f} -> GRPO {r['grpo_accuracy']:.3f}"
        f" ({100 * (r['grpo_accuracy'] - r['sft_accuracy']):+.1f} points)"
    )
    print(
        f"DPO hidden score (sampled answers right): {r['dpo_score_before']:.3f} -> "
        f"{r['dpo_score_after']:.3f}"
    )
    e = r["export"]
    print(
        f"export: {e['export_dir']}; transformers' greedy ids equal jaxrl's on "
        f"{e['num_prompts']} prompts: {e['same_greedy_ids']} (e.g. {e['example']!r})"
    )
    s = r["seconds"]
    print(
        f"wall time: SFT {s['sft']:.0f} s, GRPO {s['grpo']:.0f} s, DPO {s['dpo']:.0f} s, "
        f"total {s['total']:.0f} s"
    )
    if not e["same_greedy_ids"]:
        raise SystemExit("the exported model's greedy text differs in transformers")
    return r


if __name__ == "__main__":
    main()
