"""The ``llm`` suite: the reproductions of the two LLM issues on small models made from scratch.

Rows:

* ``dpo``: SFT on the preference task, then DPO (sigmoid, β = 0.1) from the SFT model;
  when DPO shows likelihood displacement (chosen and rejected log-probs both fall while
  the margin grows) RPO (DPO + NLL on the chosen response) runs beside it. The pieces
  of ``examples/dpo_preferences.py``.
* ``generation``: tokens/s of generation with and without the KV cache at two
  sequence lengths (``benchmarks/llm_generation.py``'s ``measure``).
* ``grpo``: SFT on multi-digit addition, then GRPO from it over several seeds: greedy
  exact-match accuracy before and after, KL to the reference (issue 7's target: +30
  points or more).
* ``rlhf``: SFT on the preference task, a Bradley–Terry reward model, then RLHF-PPO:
  the hidden true score before and after and the KL to the reference.

No weights or data are downloaded: tasks generate their data.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from benchmarks.harness.common import load_example, row_provenance, select_names
from benchmarks.harness.stats import summarize_scores

__all__ = ["ROWS", "dpo", "generation", "grpo", "rlhf", "run_suite"]

ROWS = ("dpo", "generation", "grpo", "rlhf")


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
            compile_s, run_s = measure(
                params, model, gen, tokens, mask, use_cache, 2 if quick else 5
            )
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
    """SFT on addition, then GRPO from the SFT model with ``seeds`` seeds."""
    from jaxrl.llm import SFTConfig, train_sft
    from jaxrl.llm.grpo import GRPOConfig, train_grpo

    n = seeds or (2 if quick else 3)
    sft_steps, grpo_steps = (50, 4) if quick else (1000, 100)
    start = time.time()
    sft = train_sft(
        SFTConfig(task="addition", num_steps=sft_steps, eval_every=sft_steps // 2),
        jax.random.PRNGKey(0),
    )
    sft_s = time.time() - start
    before, after, kl, wall = [], [], [], []
    for seed in range(n):
        t0 = time.time()
        cfg = GRPOConfig(num_steps=grpo_steps, eval_every=max(1, grpo_steps // 4))
        res = train_grpo(cfg, jax.random.PRNGKey(100 + seed), init_from=sft)
        before.append(res.summary["before_accuracy"])
        after.append(res.summary["accuracy"])
        kl.append(res.summary["kl_ref"])
        wall.append(time.time() - t0)
    gain = np.asarray(after) - np.asarray(before)
    return {
        "sft_steps": sft_steps,
        "grpo_steps": grpo_steps,
        "seeds": n,
        "sft_accuracy": float(sft.summary.get("heldout_accuracy", np.nan)),
        "accuracy_before": before,
        "accuracy_after": after,
        "gain_points": summarize_scores(100 * gain),
        "kl_ref": kl,
        "sft_s": sft_s,
        "grpo_s_per_seed": wall,
        "wall_s": time.time() - start,
        "target": {"value": 30.0, "source": "issue 7: +30 accuracy points or more over SFT"},
        "checks": {"gain_at_least_30_points": float(np.mean(gain)) * 100 >= 30.0},
    }


def rlhf(quick: bool) -> dict[str, Any]:
    """SFT on the preference task → reward model → RLHF-PPO; hidden score and KL."""
    from jaxrl.llm import RewardModelConfig, SFTConfig, train_reward_model, train_sft
    from jaxrl.llm.rlhf import RLHFConfig, train_rlhf

    sft_steps, rm_steps, ppo_steps = (50, 50, 4) if quick else (500, 1000, 100)
    start = time.time()
    k_sft, k_rm, k_ppo = jax.random.split(jax.random.PRNGKey(0), 3)
    sft = train_sft(SFTConfig(task="preference", num_steps=sft_steps, eval_every=sft_steps), k_sft)
    rm = train_reward_model(
        RewardModelConfig(num_steps=rm_steps, eval_every=rm_steps), k_rm, init_from=sft.params
    )
    res = train_rlhf(
        RLHFConfig(num_steps=ppo_steps, eval_every=max(1, ppo_steps // 4)),
        k_ppo,
        init_from=sft,
        reward_model=(rm.params, rm.model_config),
    )
    s = res.summary
    return {
        "sft_steps": sft_steps,
        "rm_steps": rm_steps,
        "ppo_steps": ppo_steps,
        "rm_heldout_accuracy": float(rm.summary.get("heldout_accuracy", np.nan)),
        "score_before": s.get("before_score"),
        "score_after": s.get("score"),
        "rm_score_before": s.get("before_rm_score"),
        "rm_score_after": s.get("rm_score"),
        "kl_ref_after": s.get("kl_ref"),
        "step_s_median": float(np.median(res.metrics["step_time"][1:]))
        if len(res.metrics["step_time"]) > 1
        else None,
        "wall_s": time.time() - start,
        "checks": {
            "rlhf_raises_hidden_score": (s.get("score") or 0) > (s.get("before_score") or 0)
        },
    }


def run_suite(
    quick: bool, names: list[str] | None = None, seeds: int | None = None, log=print, on_row=None
) -> tuple[list[dict], dict[str, Any]]:
    """Runs the selected rows (all by default)."""
    rows = []
    for name in select_names(list(ROWS), names):
        log(f"[llm] {name}")
        if name == "dpo":
            res = dpo(quick)
        elif name == "generation":
            res = generation(quick)
        elif name == "grpo":
            res = grpo(quick, seeds)
        else:
            res = rlhf(quick)
        rows.append({"name": name, **res, "provenance": row_provenance()})
        if on_row is not None:
            on_row(rows[-1], {})
        log(f"[llm] {name}: checks {res['checks']} ({res['wall_s']:.0f} s)")
    return rows, {}
