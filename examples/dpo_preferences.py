"""SFT, then DPO on the preference task: the hidden score, and what happens to likelihoods.

The task (``jaxrl.llm.tasks.PreferenceTask``): a prompt of 2–4 digits, a completion
of 3–8 digits; the hidden score is the share of completion digits that occur in the
prompt. Pairs of base completions are labelled by Bradley–Terry sampling from that
score. Steps:

1. SFT on base completions: the model learns the base distribution (score ≈ 0.27).
2. DPO (sigmoid, β = 0.1) from the SFT model, which is also the frozen reference.
3. If the log-probs of both the chosen and the rejected training responses fall
   while the margin grows (likelihood displacement: DPO only asks that chosen rise
   *relative* to rejected), the script says so and runs DPO with an NLL term on the
   chosen response (RPO, Pang et al. 2024, https://arxiv.org/abs/2404.19733) beside it.

Prints a before/after table and writes docs/figures/dpo_preferences.png.
Run: ``python examples/dpo_preferences.py`` (about 2–4 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxrl.llm import DPOConfig, SFTConfig, train_dpo, train_sft  # noqa: E402
from jaxrl.llm.training import default_model_config  # noqa: E402

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"
# QUICK also trains and evaluates on few rows: batches of 8, 16 held-out prompts and pairs;
# and a one-layer model (the layers are a Python loop: each is compiled in every program).
QUICK_MODEL = {"model": default_model_config(num_layers=1)} if QUICK else {}
SFT_SIZES = {"batch_size": 8, "num_train_examples": 256, "eval_prompts": 16, **QUICK_MODEL}
SFT_SIZES = SFT_SIZES if QUICK else {}
DPO_SIZES = {"batch_size": 8, "num_train_pairs": 64, "eval_pairs": 16, "eval_prompts": 16}
DPO_SIZES = {**DPO_SIZES, **QUICK_MODEL}
DPO_SIZES = DPO_SIZES if QUICK else {}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=4 if QUICK else 500)
    parser.add_argument("--dpo-steps", type=int, default=2 if QUICK else 400)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--nll-coef", type=float, default=1.0, help="RPO's α")
    parser.add_argument("--seed", type=int, default=0)
    figure = "dpo_preferences.png"
    parser.add_argument(
        "--figure", default=f"runs/examples-quick/{figure}" if QUICK else f"docs/figures/{figure}"
    )
    return parser.parse_args()


def displaced(evals) -> bool:
    """Both tracked log-probs fell while the log-ratio margin grew."""
    return bool(
        evals["train_logps_chosen"][-1] < evals["train_logps_chosen"][0]
        and evals["train_logps_rejected"][-1] < evals["train_logps_rejected"][0]
        and evals["train_margin"][-1] > evals["train_margin"][0]
    )


def report(runs: dict) -> None:
    rows = [
        ("hidden score of samples", "score"),
        ("held-out preference accuracy", "heldout_pref_accuracy"),
        ("log π(chosen), train pairs", "train_logps_chosen"),
        ("log π(rejected), train pairs", "train_logps_rejected"),
        ("log-ratio margin Δ", "train_margin"),
        ("KL to reference (nats/seq.)", "kl"),
        ("completion length", "length"),
    ]
    first = next(iter(runs.values()))
    header = f"{'':32s} {'SFT (before)':>13s}" + "".join(f" {n:>13s}" for n in runs)
    print(header)
    for label, key in rows:
        line = f"{label:32s} {first.evals[key][0]:13.3f}"
        line += "".join(f" {r.evals[key][-1]:13.3f}" for r in runs.values())
        print(line)


def plot(runs: dict, path: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    styles = {"DPO": "-", "RPO": "--"}
    for name, result in runs.items():
        ev, ls = result.evals, styles.get(name, ":")
        axes[0].plot(
            ev["step"], ev["train_logps_chosen"], ls, color="tab:green", label=f"{name}: chosen"
        )
        axes[0].plot(
            ev["step"], ev["train_logps_rejected"], ls, color="tab:red", label=f"{name}: rejected"
        )
        axes[1].plot(ev["step"], ev["train_margin"], ls, color="k", label=name)
        axes[2].plot(ev["step"], ev["score"], ls, color="tab:blue", label=name)
    axes[0].set(
        title="sequence log-prob of training pairs", xlabel="DPO update", ylabel="log π(y | x)"
    )
    axes[1].set(title="margin Δ = chosen − rejected log-ratio", xlabel="DPO update")
    axes[2].set(title="hidden true score of samples", xlabel="DPO update")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)


def main():
    args = parse_args()
    start = time.perf_counter()
    key_sft, key_dpo = jax.random.split(jax.random.PRNGKey(args.seed))
    sft_config = SFTConfig(
        task="preference", num_steps=args.sft_steps, eval_every=args.sft_steps, **SFT_SIZES
    )
    sft = train_sft(sft_config, key_sft)
    print(
        f"SFT: {args.sft_steps} updates, loss {sft.summary['final_train_loss']:.3f}, "
        f"hidden score {sft.summary['heldout_score']:.3f} "
        f"({time.perf_counter() - start:.0f} s)"
    )

    def run_dpo(nll_coef: float):
        config = DPOConfig(
            beta=args.beta,
            nll_coef=nll_coef,
            num_steps=args.dpo_steps,
            eval_every=max(args.dpo_steps // 8, 1),
            learning_rate=args.learning_rate,
            **DPO_SIZES,
        )
        return train_dpo(config, key_dpo, sft.params)

    runs = {"DPO": run_dpo(0.0)}
    print(f"DPO done ({time.perf_counter() - start:.0f} s)")
    if displaced(runs["DPO"].evals):
        ev = runs["DPO"].evals
        c, r, m = ev["train_logps_chosen"], ev["train_logps_rejected"], ev["train_margin"]
        print(
            "Likelihood displacement: under DPO the log-probs of both the chosen "
            f"({c[0]:.1f} -> {c[-1]:.1f}) and the rejected ({r[0]:.1f} -> {r[-1]:.1f}) "
            f"training responses fell while the margin grew ({m[0]:.2f} -> {m[-1]:.2f}). "
            "The loss only needs chosen to rise relative to "
            "rejected; mass moves to responses outside the data. Running DPO with an NLL term "
            f"on the chosen response (RPO, alpha = {args.nll_coef}) beside it."
        )
        runs["RPO"] = run_dpo(args.nll_coef)
    else:
        print("No likelihood displacement: the chosen log-prob did not fall with the rejected.")
        if QUICK:  # the quick run (tests/test_docs.py) goes through the RPO path all the same
            print(f"JAXRL_QUICK=1: RPO (alpha = {args.nll_coef}) runs beside DPO anyway.")
            runs["RPO"] = run_dpo(args.nll_coef)
    print()
    report(runs)
    plot(runs, args.figure)
    print(f"\nfigure: {args.figure}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
