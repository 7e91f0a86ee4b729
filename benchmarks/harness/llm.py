"""The ``llm`` suite: the reproductions of the two LLM issues on small models made from scratch.

Rows:

* ``dpo``: SFT on the preference task, then DPO (sigmoid, β = 0.1) from the SFT model;
  when DPO shows likelihood displacement (chosen and rejected log-probs both fall while
  the margin grows) RPO (DPO + NLL on the chosen response) runs beside it. The pieces
  of ``examples/dpo_preferences.py``.
* ``generation``: tokens/s of generation with and without the KV cache at two
  sequence lengths (``benchmarks/llm_generation.py``'s ``measure``).
* ``grpo``: per seed, SFT on 2-digit addition then GRPO from it: greedy exact-match
  accuracy before and after, KL to the reference (issue 7's target: +30 points or
  more over ≥ 3 seeds); ``benchmarks/llm_rl.py``'s ``bench_grpo``.
* ``rlhf``: per seed, SFT on the preference task, a Bradley–Terry reward model, then
  RLHF-PPO: the hidden true score before and after and the KL to the reference
  (``bench_rlhf``).
* ``rl-speed``: steps/s, tokens/s and the share of each stage of one GRPO and one
  RLHF step (``bench_speed``).

No weights or data are downloaded: tasks generate their data.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from benchmarks.harness.common import load_example, row_provenance, select_names

__all__ = ["ROWS", "dpo", "generation", "grpo", "rl_speed", "rlhf", "run_suite"]

ROWS = ("dpo", "generation", "rl-speed", "grpo", "rlhf")


def _first_last(evals: dict[str, np.ndarray], keys) -> dict[str, Any]:
    return {k: [float(evals[k][0]), float(evals[k][-1])] for k in keys if k in evals}


def dpo(quick: bool) -> dict[str, Any]:
    """SFT → DPO (→ RPO beside it if DPO displaces likelihoods)."""
    from jaxrl.llm import DPOConfig, SFTConfig, train_dpo, train_sft

    example = load_example("dpo_preferences")
    sft_steps, dpo_steps = (50, 40) if quick else (500, 400)
    start = time.time()
    key_sft, key_dpo = jax.random.split(jax.random.PRNGKey(0))
    sft = train_sft(
        SFTConfig(task="preference", num_steps=sft_steps, eval_every=sft_steps), key_sft
    )
    out: dict[str, Any] = {"sft_steps": sft_steps, "dpo_steps": dpo_steps, "beta": 0.1}
    keys = ("score", "heldout_pref_accuracy", "train_logps_chosen", "train_logps_rejected")
    keys += ("train_margin", "kl", "length")
    for name, nll in (("DPO", 0.0), ("RPO", 1.0)):
        cfg = DPOConfig(
            beta=0.1, nll_coef=nll, num_steps=dpo_steps, eval_every=dpo_steps // 8,
            learning_rate=1e-3,
        )  # fmt: skip
        res = train_dpo(cfg, key_dpo, sft.params)
        out[name] = {"first_last": _first_last(res.evals, keys)}
        if name == "DPO":
            out["displacement"] = bool(example.displaced(res.evals))
            if not out["displacement"]:
                break
    out["wall_s"] = time.time() - start
    ds = out["DPO"]["first_last"]
    out["checks"] = {
        "dpo_raises_hidden_score": ds["score"][1] > ds["score"][0],
        "dpo_heldout_accuracy_above_half": ds["heldout_pref_accuracy"][1] > 0.5,
    }
    return out


def generation(quick: bool) -> dict[str, Any]:
    """KV cache versus recomputation, tokens/s at two total lengths (batch 32, prompt 8)."""
    from benchmarks.llm_generation import measure  # the LLM helper's timer
    from jaxrl.llm import GenerationConfig, ModelConfig, init_params
    from jaxrl.llm.tasks import BOS, SEP, TOKENIZER

    lengths, batch, prompt_len = ((32, 64) if quick else (64, 256)), 32, 8
    model = ModelConfig(vocab_size=TOKENIZER.vocab_size, max_len=max(lengths))
    params = init_params(model, jax.random.PRNGKey(0))
    digits = np.random.default_rng(0).integers(4, 14, (batch, prompt_len - 2))
    tokens = np.concatenate([np.full((batch, 1), BOS), digits, np.full((batch, 1), SEP)], 1).astype(
        np.int32
    )
    mask = np.ones_like(tokens)
    start = time.time()
    out: dict[str, Any] = {"batch": batch, "prompt_len": prompt_len, "lengths": {}}
    for length in lengths:
        new = length - prompt_len
        gen = GenerationConfig(max_new_tokens=new, temperature=1.0)
        entry = {}
        for use_cache in (True, False):
            # The LLM helper's timer: (compile s, median run s[, timed runs]) within a budget.
            timed = measure(
                params, model, gen, tokens, mask, use_cache, 2 if quick else 5, 5 if quick else 30
            )
            compile_s, run_s = timed[0], timed[1]
            entry["kv_cache" if use_cache else "recompute"] = {
                "compile_s": compile_s,
                "run_s": run_s,
                "tokens_per_s": batch * new / run_s,
            }
        entry["speedup"] = entry["recompute"]["run_s"] / entry["kv_cache"]["run_s"]
        out["lengths"][str(length)] = entry
    out["wall_s"] = time.time() - start
    out["checks"] = {"kv_cache_faster_at_longest": entry["speedup"] > 1.0}
    return out


def grpo(quick: bool, seeds: int | None) -> dict[str, Any]:
    """SFT on addition then GRPO, per seed (``benchmarks/llm_rl.py``'s ``bench_grpo``)."""
    from benchmarks.llm_rl import bench_grpo

    n = seeds or (2 if quick else 3)
    start = time.time()
    out = bench_grpo(list(range(n)), *((20, 4) if quick else (300, 600)))
    gain = out["greedy_gain_points"]
    out.update(
        seeds=n,
        wall_s=time.time() - start,
        target={"value": 30.0, "source": "issue 7: +30 exact-match points or more over SFT"},
        checks={"gain_at_least_30_points": (gain.get("mean") or 0.0) >= 30.0},
    )
    return out


def rlhf(quick: bool, seeds: int | None) -> dict[str, Any]:
    """SFT → reward model → RLHF-PPO, per seed (``benchmarks/llm_rl.py``'s ``bench_rlhf``)."""
    from benchmarks.llm_rl import bench_rlhf

    n = seeds or (1 if quick else 3)
    start = time.time()
    out = bench_rlhf(list(range(n)), *((20, 20, 4) if quick else (500, 1000, 150)))
    gain = out["score_gain"]
    out.update(
        seeds=n,
        wall_s=time.time() - start,
        checks={"rlhf_raises_hidden_score": (gain.get("mean") or 0.0) > 0.0},
    )
    return out


def rl_speed(quick: bool) -> dict[str, Any]:
    """Steps/s, tokens/s and stage shares of one GRPO and one RLHF step (``bench_speed``)."""
    from benchmarks.llm_rl import bench_speed

    start = time.time()
    out = bench_speed(3 if quick else 20)
    return {**out, "wall_s": time.time() - start, "checks": {}}


def run_suite(
    quick: bool, names: list[str] | None = None, seeds: int | None = None, log=print, on_row=None
) -> tuple[list[dict], dict[str, Any]]:
    """Runs the selected rows (all by default)."""
    rows = []
    for name in select_names(list(ROWS), names):
        log(f"[llm] {name}")
        try:
            if name == "dpo":
                res = dpo(quick)
            elif name == "generation":
                res = generation(quick)
            elif name == "grpo":
                res = grpo(quick, seeds)
            elif name == "rlhf":
                res = rlhf(quick, seeds)
            else:
                res = rl_speed(quick)
        except Exception as e:  # one broken row must not cost the others
            log(f"[llm] {name}: FAILED: {type(e).__name__}: {e}")
            continue
        rows.append({"name": name, **res, "provenance": row_provenance()})
        if on_row is not None:
            on_row(rows[-1], {})
        log(f"[llm] {name}: checks {res['checks']} ({res['wall_s']:.0f} s)")
    return rows, {}
