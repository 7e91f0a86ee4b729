"""SFT → reward model → RLHF-PPO on the preference task, with and without the KL penalty.

The task (``jaxrl.llm.tasks.PreferenceTask``): a prompt of 2–4 digits, a completion
of 3–8 digits; a hidden true score, the share of completion digits that occur in
the prompt, is never shown to the learner. Steps:

1. SFT on base completions (random digit strings): hidden score ≈ 0.27.
2. A Bradley–Terry reward model on pairs of base completions labelled by sampling
   from the hidden score; it starts from the SFT model.
3. RLHF-PPO from the SFT model (the frozen reference) against the reward model:
   per-token KL penalty β·(log π − log π_ref), the reward-model score on the last
   token, token-level GAE, a separate critic started from the reward model.
4. The same with β = 0: nothing holds the policy near the data the reward model was
   trained on. Where the reward-model score rises while the hidden score does not
   follow (or drops), the policy is exploiting the reward model's errors: reward
   hacking. The script says whether it happened and prints sampled completions.

Prints a before/after table and writes docs/figures/rlhf_pipeline.png.
Run: ``python examples/rlhf_pipeline.py`` (about 5–8 minutes on 2 CPU cores).
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

from jaxrl.llm.generate import GenerationConfig, generate  # noqa: E402
from jaxrl.llm.reward_model import RewardModelConfig, train_reward_model  # noqa: E402
from jaxrl.llm.rlhf import RLHFConfig, train_rlhf  # noqa: E402
from jaxrl.llm.sft import SFTConfig, train_sft  # noqa: E402
from jaxrl.llm.tasks import TOKENIZER, make_task  # noqa: E402
from jaxrl.llm.training import default_model_config  # noqa: E402

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"
# Held-out prompts per evaluation; QUICK also trains on few rows with small batches, and a
# one-layer model (the layers are a Python loop: each is compiled again in every program).
EVAL_PROMPTS = 16 if QUICK else 256
QUICK_MODEL = {"model": default_model_config(num_layers=1)} if QUICK else {}
SFT_SIZES = {"batch_size": 8, "num_train_examples": 256, **QUICK_MODEL} if QUICK else {}
RM_SIZES = {"batch_size": 8, "num_train_pairs": 64, "eval_pairs": 16, **QUICK_MODEL}
RM_SIZES = RM_SIZES if QUICK else {}
PPO_SIZES = {"num_prompts": 4, "num_minibatches": 1, "num_train_prompts": 64} if QUICK else {}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=4 if QUICK else 500)
    parser.add_argument("--rm-steps", type=int, default=4 if QUICK else 1000)
    parser.add_argument("--ppo-steps", type=int, default=2 if QUICK else 200)
    parser.add_argument("--kl-coef", type=float, default=0.05, help="β of the KL penalty")
    parser.add_argument("--seed", type=int, default=0)
    figure = "rlhf_pipeline.png"
    parser.add_argument(
        "--figure", default=f"runs/examples-quick/{figure}" if QUICK else f"docs/figures/{figure}"
    )
    return parser.parse_args()


def train_stages(sft_steps: int, rm_steps: int, seed: int, log=print, sizes=None):
    """SFT on base completions, then the reward model from it; ``sizes`` (e.g. a ``model``)
    go into both configs beside the quick sizes."""
    sizes = sizes or {}
    key_sft, key_rm = jax.random.split(jax.random.PRNGKey(seed))
    start = time.perf_counter()
    sft_config = SFTConfig(
        task="preference", num_steps=sft_steps, eval_every=sft_steps, eval_prompts=EVAL_PROMPTS,
        **{**SFT_SIZES, **sizes},
    )  # fmt: skip
    sft = train_sft(sft_config, key_sft)
    log(
        f"SFT: hidden score {sft.summary['heldout_score']:.3f} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    rm_config = RewardModelConfig(num_steps=rm_steps, eval_every=rm_steps, **{**RM_SIZES, **sizes})
    rm = train_reward_model(rm_config, key_rm, init_from=sft.params)
    log(
        f"reward model: held-out accuracy {rm.summary['heldout_accuracy']:.3f} on the labels, "
        f"{rm.summary['heldout_true_accuracy']:.3f} against the hidden score "
        f"({time.perf_counter() - start:.0f} s)"
    )
    return sft, rm


def run_ppo(sft, rm, kl_coef: float, ppo_steps: int, seed: int, log=print):
    config = RLHFConfig(
        task="preference", num_steps=ppo_steps, eval_every=max(ppo_steps // 10, 1),
        kl_coef=kl_coef, eval_prompts=EVAL_PROMPTS, **PPO_SIZES,
    )  # fmt: skip
    start = time.perf_counter()

    def progress(step, n):
        log(
            f"  β = {kl_coef}: step {step:4d}, reward-model score {n['rm_score']:.3f}, hidden "
            f"score {n['score']:.3f}, KL {n['kl_ref']:.2f} ({time.perf_counter() - start:.0f} s)"
        )

    key = jax.random.PRNGKey(1000 + seed)
    return train_rlhf(config, key, init_from=sft, reward_model=rm, progress_callback=progress)


def hacked(evals) -> bool:
    """The reward-model score rose while the hidden score did not follow.

    That is: the reward-model score gained more than 0.25, and the hidden score gained
    less than 0.05 or ended more than 0.05 below its best.
    """
    rm, true = evals["rm_score"], evals["score"]
    rm_up = rm[-1] - rm[0] > 0.25
    return bool(rm_up and (true[-1] - true[0] < 0.05 or true[-1] < np.max(true) - 0.05))


def samples(result, task, n: int = 4) -> list[str]:
    """A few held-out prompts and the policy's sampled completions, as text."""
    prompts = task.prompts("heldout", n, seed=7)
    gen = generate(
        result.params, result.model_config, GenerationConfig(max_new_tokens=task.completion_len),
        prompts.tokens, prompts.mask, jax.random.PRNGKey(0),
    )  # fmt: skip
    out = []
    for i in range(n):
        stop = "" if bool(gen.finished[i]) else " (no EOS)"
        prompt, completion = TOKENIZER.decode(prompts.tokens[i]), TOKENIZER.decode(gen.tokens[i])
        out.append(f"{prompt} → {completion}{stop}")
    return out


def report(runs: dict) -> None:
    rows = [
        ("hidden true score (sampled)", "score"),
        ("reward-model score", "rm_score"),
        ("KL to reference (nats/completion)", "kl_ref"),
        ("completion length (tokens)", "length"),
    ]
    first = next(iter(runs.values())).evals
    print(
        f"\n{f'held-out, {EVAL_PROMPTS} prompts':36s} {'SFT (before)':>13s}"
        + "".join(f" {n:>13s}" for n in runs)
    )
    for label, key in rows:
        line = f"{label:36s} {first[key][0]:13.3f}"
        print(line + "".join(f" {r.evals[key][-1]:13.3f}" for r in runs.values()))
    task = make_task("preference")
    for name, r in runs.items():
        if hacked(r.evals):
            print(
                f"\n{name}: reward hacking: the reward-model score rose, the hidden score did not."
            )
        else:
            print(f"\n{name}: no reward hacking seen: the hidden score followed the reward model.")
        print("  samples (prompt → completion):", "; ".join(samples(r, task)))


def plot(runs: dict, path: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for (name, r), color in zip(runs.items(), ("tab:blue", "tab:red"), strict=False):
        ev = r.evals
        axes[0].plot(ev["step"], ev["score"], "o-", color=color, label=name)
        axes[1].plot(ev["step"], ev["rm_score"], "o-", color=color, label=name)
        axes[2].plot(ev["step"], ev["kl_ref"], "o-", color=color, label=name)
    axes[0].set(title="hidden true score (held-out)", xlabel="PPO step")
    axes[1].set(title="reward-model score (held-out)", xlabel="PPO step")
    axes[2].set(title="KL(π ‖ π_ref) per completion", xlabel="PPO step")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)


def main():
    args = parse_args()
    start = time.perf_counter()
    sft, rm = train_stages(args.sft_steps, args.rm_steps, args.seed)
    runs = {}
    for beta in (args.kl_coef, 0.0):
        runs[f"PPO β={beta:g}"] = run_ppo(sft, rm, beta, args.ppo_steps, args.seed)
    report(runs)
    m = next(iter(runs.values())).metrics
    print(f"PPO: {1 / np.median(m['step_time'][1:]):.1f} steps/s")
    plot(runs, args.figure)
    print(f"figure: {args.figure}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
