"""SFT, then GRPO on a verifiable task: exact-match accuracy of multi-digit addition.

The task (``jaxrl.llm.tasks.AdditionTask``): ``a+b`` with operands of up to two
digits, the sum written least-significant digit first; the reward is 1 for an exact
answer and 0 otherwise. Steps:

1. SFT for ``--sft-steps`` updates: the model learns the format and a little of the
   skill (held-out greedy accuracy between a few percent and about 30 % after 300
   updates, depending on the seed: SFT is in its steep phase there).
2. GRPO (``--preset grpo``, or ``dr_grpo``, ``dapo``, ``rloo``, ``gspo``) from the SFT model,
   which stays frozen as the reference: 32 prompts × 8 samples per step, group
   advantages, the clipped token-level objective and a k3 KL term (β = 0.04).

Prints a before/after table (greedy and sampled exact-match accuracy, KL to the
reference, speed) and writes docs/figures/grpo_verifiable.png.
Run: ``python examples/grpo_verifiable.py`` (about 3–5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxrl.llm.grpo import grpo_preset, train_grpo  # noqa: E402
from jaxrl.llm.sft import SFTConfig, train_sft  # noqa: E402
from jaxrl.llm.training import default_model_config  # noqa: E402

TASK_OPTIONS = {"num_digits": 2, "reverse_answer": True}

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"
# QUICK also trains and evaluates on few rows: 16 held-out prompts, 4 prompts × 4 per step;
# and a one-layer model (the layers are a Python loop: each is compiled in every program).
MODEL = default_model_config(max_len=16, **({"num_layers": 1} if QUICK else {}))
SFT_SIZES = {"batch_size": 8, "num_train_examples": 256, "eval_prompts": 16} if QUICK else {}
GRPO_SIZES = {"num_prompts": 4, "group_size": 4, "eval_prompts": 16, "num_train_prompts": 64}
GRPO_SIZES = GRPO_SIZES if QUICK else {}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=4 if QUICK else 300)
    parser.add_argument("--grpo-steps", type=int, default=2 if QUICK else 600)
    parser.add_argument("--preset", default="grpo", help="grpo, dr_grpo, dapo, rloo or gspo")
    parser.add_argument("--seed", type=int, default=0)
    figure = "grpo_verifiable.png"
    parser.add_argument(
        "--figure", default=f"runs/examples-quick/{figure}" if QUICK else f"docs/figures/{figure}"
    )
    return parser.parse_args()


def run_pipeline(sft_steps: int, grpo_steps: int, preset: str, seed: int, log=print):
    """SFT then GRPO; returns ``(sft_result, grpo_result, grpo_config, seconds)``."""
    key_sft, key_grpo = jax.random.split(jax.random.PRNGKey(seed))
    start = time.perf_counter()
    sft_config = SFTConfig(
        task="addition", task_options=TASK_OPTIONS, model=MODEL,
        num_steps=sft_steps, eval_every=sft_steps, **SFT_SIZES,
    )  # fmt: skip
    sft = train_sft(sft_config, key_sft)
    log(
        f"SFT: {sft_steps} updates, held-out greedy accuracy "
        f"{sft.summary['heldout_accuracy']:.3f} ({time.perf_counter() - start:.0f} s)"
    )
    config = grpo_preset(
        preset, task="addition", task_options=TASK_OPTIONS, num_steps=grpo_steps,
        eval_every=max(grpo_steps // 12, 1),
        learning_rate=3e-4,  # from a weak SFT model (GRPOConfig's 1e-5 keeps a strong one)
        **GRPO_SIZES,
    )  # fmt: skip

    def progress(step, n):
        log(
            f"  GRPO step {step:4d}: reward {n['reward_mean']:.3f}, greedy accuracy "
            f"{n['accuracy']:.3f}, KL {n['kl_ref']:.2f} ({time.perf_counter() - start:.0f} s)"
        )

    grpo = train_grpo(config, key_grpo, init_from=sft, progress_callback=progress)
    return sft, grpo, config, time.perf_counter() - start


def report(grpo, config) -> None:
    ev, m = grpo.evals, grpo.metrics
    rows = [
        ("greedy exact-match accuracy", "accuracy"),
        ("sampled (τ = 1) exact-match accuracy", "sampled_accuracy"),
        ("KL to reference (nats/completion)", "kl_ref"),
        ("completion length (tokens)", "length"),
    ]
    print(f"\n{'held-out, 256 prompts':38s} {'SFT (before)':>13s} {'GRPO (after)':>13s}")
    for label, key in rows:
        print(f"{label:38s} {ev[key][0]:13.3f} {ev[key][-1]:13.3f}")
    steps = m["step_time"][1:]  # the first step includes compilation
    completions = config.num_prompts * config.group_size
    print(
        f"\nGRPO speed: {1 / np.median(steps):.1f} steps/s, "
        f"{completions * np.mean(m['completion_length']) / np.median(steps):.0f} completion "
        f"tokens/s ({completions} completions per step)"
    )


def plot(grpo, path: str) -> None:
    ev, m = grpo.evals, grpo.metrics
    steps = np.arange(1, len(m["reward_mean"]) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].plot(ev["step"], ev["accuracy"], "o-", label="greedy")
    axes[0].plot(ev["step"], ev["sampled_accuracy"], "s--", label="sampled, τ = 1")
    axes[0].set(title="held-out exact-match accuracy", xlabel="GRPO step", ylim=(0, 1))
    window = min(20, len(steps))
    smooth = np.convolve(m["reward_mean"], np.ones(window) / window, mode="valid")
    axes[1].plot(steps[window - 1 :], smooth, label="reward (mean of G samples)")
    axes[1].plot(steps, m["zero_variance_groups"], alpha=0.4, label="groups with equal rewards")
    axes[1].set(title="training batches", xlabel="GRPO step")
    axes[2].plot(steps, m["kl_ref"], label="KL(π ‖ π_ref) per completion")
    axes[2].plot(steps, m["entropy"], label="entropy per token")
    axes[2].set(title="distance from the SFT model", xlabel="GRPO step")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)


def main():
    args = parse_args()
    _, grpo, config, seconds = run_pipeline(args.sft_steps, args.grpo_steps, args.preset, args.seed)
    report(grpo, config)
    plot(grpo, args.figure)
    print(f"figure: {args.figure}; total {seconds:.0f} s")


if __name__ == "__main__":
    main()
