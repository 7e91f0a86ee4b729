"""LLM-side RL benchmarks: GRPO accuracy gain, RLHF true-score gain, step throughput.

Three parts (``python benchmarks/llm_rl.py [grpo] [rlhf] [speed] [--seeds 3]``):

* ``grpo``: per seed, SFT on 2-digit addition (answer reversed) then GRPO from it,
  exactly as ``examples/grpo_verifiable.py``; held-out greedy and sampled exact-match
  accuracy before and after, the gain in points, and the KL to the reference
  (issue 7's target: +30 points or more over ≥ 3 seeds).
* ``rlhf``: per seed, SFT on the preference task, a Bradley–Terry reward model, then
  RLHF-PPO (β = 0.05), as ``examples/rlhf_pipeline.py``; the hidden true score
  before and after, the reward-model score and the KL to the reference.
* ``speed``: steps/s and completion tokens/s of one compiled GRPO step and one
  compiled RLHF step (default model sizes), and the share of time in each stage
  when the stages run one by one (generation versus updates).

Results are printed as tables and written to ``benchmarks/out/llm_rl.json``; means
come with 95 % bootstrap intervals over seeds (``jaxrl.run.stats``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.llm.grpo import GRPOConfig, grpo_step_jit, grpo_step_timed, make_grpo_roles
from jaxrl.llm.rl_loop import LoadedModel
from jaxrl.llm.rlhf import RLHFConfig, make_rlhf_roles, rlhf_step_jit, rlhf_step_timed
from jaxrl.llm.tasks import make_task
from jaxrl.llm.training import default_model_config
from jaxrl.llm.transformer import init_params
from jaxrl.run.stats import summarize

REPO = Path(__file__).resolve().parents[1]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_grpo(seeds: list[int], sft_steps: int, grpo_steps: int) -> dict:
    ex = _example("grpo_verifiable")
    runs = []
    for seed in seeds:
        _, res, _, seconds = ex.run_pipeline(
            sft_steps, grpo_steps, "grpo", seed, log=lambda s: None
        )
        s = res.summary
        runs.append({
            "seed": seed,
            "greedy_before": s["before_accuracy"], "greedy_after": s["accuracy"],
            "sampled_before": s["before_sampled_accuracy"], "sampled_after": s["sampled_accuracy"],
            "kl_ref_after": s["kl_ref"], "seconds": seconds,
        })  # fmt: skip
        print(f"grpo seed {seed}: {runs[-1]}", flush=True)
    gain = [100 * (r["greedy_after"] - r["greedy_before"]) for r in runs]
    gain_sampled = [100 * (r["sampled_after"] - r["sampled_before"]) for r in runs]
    return {
        "sft_steps": sft_steps, "grpo_steps": grpo_steps, "runs": runs,
        "greedy_gain_points": summarize(gain), "sampled_gain_points": summarize(gain_sampled),
        "kl_ref_after": summarize([r["kl_ref_after"] for r in runs]),
    }  # fmt: skip


def bench_rlhf(seeds: list[int], sft_steps: int, rm_steps: int, ppo_steps: int) -> dict:
    ex = _example("rlhf_pipeline")
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        sft, rm = ex.train_stages(sft_steps, rm_steps, seed, log=lambda s: None)
        res = ex.run_ppo(sft, rm, 0.05, ppo_steps, seed, log=lambda s: None)
        s = res.summary
        runs.append({
            "seed": seed, "rm_true_accuracy": rm.summary["heldout_true_accuracy"],
            "score_before": s["before_score"], "score_after": s["score"],
            "rm_score_before": s["before_rm_score"], "rm_score_after": s["rm_score"],
            "kl_ref_after": s["kl_ref"], "max_kl_ref": float(np.max(res.evals["kl_ref"])),
            "hacked": ex.hacked(res.evals), "seconds": time.perf_counter() - start,
        })  # fmt: skip
        print(f"rlhf seed {seed}: {runs[-1]}", flush=True)
    return {
        "sft_steps": sft_steps, "rm_steps": rm_steps, "ppo_steps": ppo_steps, "kl_coef": 0.05,
        "runs": runs,
        "score_gain": summarize([r["score_after"] - r["score_before"] for r in runs]),
        "kl_ref_after": summarize([r["kl_ref_after"] for r in runs]),
    }  # fmt: skip


def _time_steps(step_fn, roles, prompts, repeats: int) -> tuple[float, list[float], dict]:
    start = time.perf_counter()
    roles, metrics = jax.block_until_ready(step_fn(roles, prompts, jax.random.PRNGKey(0)))
    first = time.perf_counter() - start
    times, lengths = [], []
    for i in range(repeats):
        start = time.perf_counter()
        roles, metrics = jax.block_until_ready(step_fn(roles, prompts, jax.random.PRNGKey(i + 1)))
        times.append(time.perf_counter() - start)
        lengths.append(float(metrics["completion_length"]))
    return first, times, {"completion_length": float(np.mean(lengths))}


def _stage_shares(timed_fn, roles, prompts, repeats: int) -> dict:
    totals: dict[str, list[float]] = {}
    timed_fn(roles, prompts, jax.random.PRNGKey(0))  # compile every stage
    for i in range(repeats):
        roles, m = timed_fn(roles, prompts, jax.random.PRNGKey(i + 1))
        for k, v in m.items():
            if k.startswith("time_"):
                totals.setdefault(k[5:], []).append(float(v))
    med = {k: float(np.median(v)) for k, v in totals.items()}
    total = sum(med.values())
    return {"median_s": med, "share": {k: v / total for k, v in med.items()}}


def bench_speed(repeats: int) -> dict:
    out = {}
    task = make_task("addition", num_digits=2, reverse_answer=True)
    model = default_model_config(max_len=16)
    policy = LoadedModel(init_params(model, jax.random.PRNGKey(0)), model, None)
    cfg = GRPOConfig()
    prompts = jax.tree_util.tree_map(jnp.asarray, task.prompts("train", cfg.num_prompts, 0))
    roles = make_grpo_roles(cfg, policy, task)
    first, times, extra = _time_steps(grpo_step_jit, roles, prompts, repeats)
    n = cfg.num_prompts * cfg.group_size
    out["grpo"] = {
        "completions_per_step": n, "compile_and_first_step_s": first,
        "step_s_median": float(np.median(times)), "steps_per_s": 1 / float(np.median(times)),
        "tokens_per_s": n * extra["completion_length"] / float(np.median(times)),
        "stages": _stage_shares(grpo_step_timed, roles, prompts, repeats),
    }  # fmt: skip
    task = make_task("preference")
    model = default_model_config()
    policy = LoadedModel(init_params(model, jax.random.PRNGKey(0)), model, None)
    rm_model = model.replace(reward_head=True)
    rm = LoadedModel(init_params(rm_model, jax.random.PRNGKey(1)), rm_model, None)
    cfg = RLHFConfig()
    prompts = jax.tree_util.tree_map(jnp.asarray, task.prompts("train", cfg.num_prompts, 0))
    roles = make_rlhf_roles(cfg, policy, task, rm)
    first, times, extra = _time_steps(rlhf_step_jit, roles, prompts, repeats)
    out["rlhf"] = {
        "completions_per_step": cfg.num_prompts, "compile_and_first_step_s": first,
        "step_s_median": float(np.median(times)), "steps_per_s": 1 / float(np.median(times)),
        "tokens_per_s": cfg.num_prompts * extra["completion_length"] / float(np.median(times)),
        "stages": _stage_shares(rlhf_step_timed, roles, prompts, repeats),
    }  # fmt: skip
    return out


def print_tables(results: dict) -> None:
    def ci(s):
        return f"{s['mean']:+.1f} [{s['mean_ci95'][0]:+.1f}, {s['mean_ci95'][1]:+.1f}]"

    if "grpo" in results:
        g = results["grpo"]
        print(f"\nGRPO on addition ({g['sft_steps']} SFT + {g['grpo_steps']} GRPO steps)")
        print(f"{'seed':>5s} {'greedy before':>14s} {'after':>7s} {'sampled before':>15s} "
              f"{'after':>7s} {'KL':>6s} {'s':>6s}")  # fmt: skip
        for r in g["runs"]:
            print(
                f"{r['seed']:5d} {r['greedy_before']:14.3f} {r['greedy_after']:7.3f} "
                f"{r['sampled_before']:15.3f} {r['sampled_after']:7.3f} "
                f"{r['kl_ref_after']:6.2f} {r['seconds']:6.0f}"
            )
        print(f"greedy gain (points, mean [95% CI]): {ci(g['greedy_gain_points'])}; "
              f"sampled: {ci(g['sampled_gain_points'])}")  # fmt: skip
    if "rlhf" in results:
        r = results["rlhf"]
        print(f"\nRLHF-PPO on the preference task (β = {r['kl_coef']}, {r['ppo_steps']} steps)")
        print(f"{'seed':>5s} {'true before':>12s} {'after':>7s} {'RM before':>10s} {'after':>7s} "
              f"{'KL':>6s} {'hacked':>7s} {'s':>6s}")  # fmt: skip
        for x in r["runs"]:
            print(
                f"{x['seed']:5d} {x['score_before']:12.3f} {x['score_after']:7.3f} "
                f"{x['rm_score_before']:10.3f} {x['rm_score_after']:7.3f} "
                f"{x['kl_ref_after']:6.2f} {x['hacked']!s:>7s} {x['seconds']:6.0f}"
            )
        s = r["score_gain"]
        print(f"true-score gain: {s['mean']:+.3f} [{s['mean_ci95'][0]:+.3f}, "
              f"{s['mean_ci95'][1]:+.3f}]")  # fmt: skip
    if "speed" in results:
        print("\nthroughput (median over steps after compilation)")
        for name, x in results["speed"].items():
            share = x["stages"]["share"]
            gen = share.get("generate_sequences", 0.0)
            upd = sum(v for k, v in share.items() if k.startswith("update"))
            print(
                f"{name}: {x['steps_per_s']:.2f} steps/s, {x['tokens_per_s']:.0f} tokens/s "
                f"({x['completions_per_step']} completions/step); stages run one by one: "
                f"generation {100 * gen:.0f} %, updates {100 * upd:.0f} %"
            )
            print("   per stage (s):", {k: round(v, 4) for k, v in x["stages"]["median_s"].items()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["grpo", "rlhf", "speed"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the script")
    parser.add_argument("--out", default="benchmarks/out/llm_rl.json")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    q = args.quick
    results: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]},
        "command": "python benchmarks/llm_rl.py " + " ".join(args.parts)
        + f" --seeds {args.seeds}" + (" --quick" if q else ""),
    }  # fmt: skip
    start = time.perf_counter()
    if "grpo" in args.parts:
        results["grpo"] = bench_grpo(seeds, 20 if q else 300, 4 if q else 600)
    if "rlhf" in args.parts:
        results["rlhf"] = bench_rlhf(seeds, 20 if q else 500, 20 if q else 1000, 4 if q else 150)
    if "speed" in args.parts:
        results["speed"] = bench_speed(3 if q else 20)
    results["wall_s"] = time.perf_counter() - start
    print_tables(results)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1, default=float)
    print(f"\nwritten: {args.out} ({results['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
