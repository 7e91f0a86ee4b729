"""Guide 7: why DPO can lower the probability of both the chosen and the rejected response.

    python examples/guides/07_dpo_likelihood.py [--quick] [--out-dir docs/guides]

Writes docs/guides/07-dpo-likelihood.md and its figure. SFT on the preference task,
then DPO from the SFT model (also the frozen reference), and the same with an NLL term
on the chosen response (RPO) beside it; the log-probs of fixed training pairs are
tracked through training. The figure is drawn by ``examples/dpo_preferences.py``'s
``plot``, and its ``displaced`` decides what the page says.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guide  # noqa: E402

from jaxrl.llm import (  # noqa: E402
    DPOConfig,
    GenerationConfig,
    SFTConfig,
    generate,
    pair_log_probs,
    train_dpo,
    train_sft,
)
from jaxrl.llm.training import default_model_config  # noqa: E402

TITLE = "Why DPO can lower the probability of both the chosen and the rejected response"


def same_margin_same_loss(beta: float) -> dict:
    """Two policies with the same margin Δ get the same DPO loss and opposite, equal pulls."""
    from jaxrl.core import dpo_loss

    ref_chosen, ref_rejected = jnp.array([-10.0]), jnp.array([-10.0])

    def loss(logps):  # logps = (log π(y_c), log π(y_r))
        return dpo_loss(logps[0:1], logps[1:2], ref_chosen, ref_rejected, beta)[0]

    chosen_up = jnp.array([-9.0, -10.0])  # y_c gains 1 nat, y_r unchanged: Δ = 1
    both_down = jnp.array([-12.0, -13.0])  # y_c loses 2 nats, y_r loses 3: Δ = 1
    return {
        "loss_chosen_up": float(loss(chosen_up)),
        "loss_both_down": float(loss(both_down)),
        "grad_both_down": np.asarray(jax.grad(loss)(both_down)),
    }


def gradient_alignment(params, model_config, pairs, count: int) -> dict:
    """How a gradient step on the DPO loss moves each log-probability, to first order.

    With g_c = ∇log π(y_c∣x) and g_r = ∇log π(y_r∣x) per pair, a step along the batch's
    DPO direction G = mean(g_c − g_r) (the gradient at the reference, up to β·σ(0))
    changes log π(y_c) by η·g_c·G and log π(y_r) by η·g_r·G.
    """

    def grads(i):
        pair = jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, i, 1), pairs)

        def logp(p, which):
            return pair_log_probs(p, model_config, pair)[which][0]

        g_c = ravel_pytree(jax.grad(logp)(params, 0))[0]
        g_r = ravel_pytree(jax.grad(logp)(params, 1))[0]
        return g_c, g_r

    g_c, g_r = jax.jit(lambda: jax.lax.map(grads, jnp.arange(count)))()
    g_c, g_r = np.asarray(g_c, np.float64), np.asarray(g_r, np.float64)  # [count, P]
    direction = (g_c - g_r).mean(0)  # the batch's DPO step direction
    cos = (g_c * g_r).sum(1) / (np.linalg.norm(g_c, axis=1) * np.linalg.norm(g_r, axis=1))
    return {
        "cosine": cos,
        "chosen_change": g_c @ direction,  # [count], first-order change per unit step
        "rejected_change": g_r @ direction,
        "chosen_falls": float(np.mean(g_c @ direction < 0)),
        "rejected_falls": float(np.mean(g_r @ direction < 0)),
    }


def own_sample_logp(params, model_config, prompts, key, length: int) -> float:
    """Mean log π(y | x) of the policy's own samples y ~ π(· | x) (minus the entropy)."""
    gen = generate(params, model_config, GenerationConfig(max_new_tokens=length), *prompts, key)
    return float(jnp.mean(jnp.sum(gen.log_probs * gen.mask, -1)))


def num(x: float, digits: int) -> str:
    """x with ``digits`` decimals, without a minus sign on a value that rounds to zero."""
    text = f"{x:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def run(quick: bool, out_dir: Path) -> dict:
    page = _guide.Page(__file__, quick, out_dir)
    example = _guide.load_example("dpo_preferences")
    sft_steps, dpo_steps, evals = (40, 16, 4) if quick else (500, 400, 8)
    # quick: a one-layer model (the layers are a Python loop, each compiled in every program)
    model = {"model": default_model_config(num_layers=1)} if quick else {}
    beta, nll_coef, lr = 0.1, 1.0, 1e-3
    key_sft, key_dpo = jax.random.split(jax.random.PRNGKey(0))
    start = time.perf_counter()
    sft = train_sft(
        SFTConfig(task="preference", num_steps=sft_steps, eval_every=sft_steps, **model), key_sft
    )
    sft_seconds = time.perf_counter() - start
    runs, configs = {}, {}
    for name, alpha in (("DPO", 0.0), ("RPO", nll_coef)):
        configs[name] = DPOConfig(
            beta=beta,
            nll_coef=alpha,
            num_steps=dpo_steps,
            eval_every=dpo_steps // evals,
            learning_rate=lr,
            **model,
        )
        runs[name] = train_dpo(configs[name], key_dpo, sft.params)
    dpo_seconds = time.perf_counter() - start - sft_seconds

    fig_path, fig_rel = page.figure("logps")
    example.plot(runs, str(fig_path))
    _guide.plt().close("all")
    fig_link = f"![logps]({fig_rel})"

    task = configs["DPO"].make_task()
    model = configs["DPO"].model
    pairs = jax.tree.map(jnp.asarray, task.preference_pairs("train", 64, seed=5))
    align = gradient_alignment(sft.params, model, pairs, 16 if quick else 64)
    prompts = task.prompts("heldout", 256, seed=7)
    prompts = (jnp.asarray(prompts.tokens), jnp.asarray(prompts.mask))
    own = {"SFT": own_sample_logp(sft.params, model, prompts, key_dpo, task.completion_len)}
    for name, r in runs.items():
        own[name] = own_sample_logp(r.params, model, prompts, key_dpo, task.completion_len)
    toy = same_margin_same_loss(beta)

    ev = {name: r.evals for name, r in runs.items()}
    d = ev["DPO"]
    displaced = example.displaced(d)
    keys = [
        ("log π(chosen), training pairs", "train_logps_chosen", 2),
        ("log π(rejected), training pairs", "train_logps_rejected", 2),
        ("margin Δ (log-ratio chosen − rejected)", "train_margin", 2),
        ("held-out preference accuracy", "heldout_pref_accuracy", 3),
        ("hidden score of samples", "score", 3),
        ("KL to the reference (nats per completion)", "kl", 2),
        ("completion length", "length", 1),
    ]
    rows = [[label, num(d[k][0], p), *(num(ev[n][k][-1], p) for n in runs)] for label, k, p in keys]
    rows.append(["log π(own samples)", *(f"{own[n]:.2f}" for n in ("SFT", "DPO", "RPO"))])
    c0, c1 = d["train_logps_chosen"][0], d["train_logps_chosen"][-1]
    r0, r1 = d["train_logps_rejected"][0], d["train_logps_rejected"][-1]
    m0, m1 = d["train_margin"][0], d["train_margin"][-1]
    rpo_c = ev["RPO"]["train_logps_chosen"][-1]
    out = {
        "displaced": displaced,
        "dpo": {k: np.asarray(v) for k, v in d.items()},
        "rpo": {k: np.asarray(v) for k, v in ev["RPO"].items()},
        "alignment": align,
        "own_sample_logp": own,
        "toy": toy,
    }
    if displaced:
        verdict = (
            f"**Both fell.** Under DPO the log-probability of the chosen training responses "
            f"went from {c0:.2f} to {c1:.2f} and that of the rejected ones from {r0:.2f} to "
            f"{r1:.2f}, while the margin grew from {m0:.2f} to {m1:.2f}."
        )
    else:
        verdict = (
            f"**In this run they did not both fall**: under DPO the chosen log-probability "
            f"went from {c0:.2f} to {c1:.2f} and the rejected one from {r0:.2f} to {r1:.2f} "
            f"(margin {m0:.2f} → {m1:.2f}). The mechanism below is what makes it possible; "
            "whether it shows depends on the data, β and the number of steps."
        )
    cos = align["cosine"]
    mean_c, mean_r = align["chosen_change"].mean(), align["rejected_change"].mean()
    similar = "similar" if np.median(cos) > 0.2 else "only weakly aligned"
    chosen_path = np.asarray(d["train_logps_chosen"])
    peak = int(np.argmax(chosen_path))
    if peak > 0 and chosen_path[-1] < chosen_path[0]:
        path_text = (
            f"In the run the chosen log-probability first rises, to {chosen_path[peak]:.2f} "
            f"after {int(d['step'][peak])} updates, and then falls."
        )
    elif chosen_path[-1] < chosen_path[0]:
        path_text = "In the run the chosen log-probability falls from the first evaluation on."
    else:
        path_text = "In this run the chosen log-probability did not end below its start."
    shared_text = (
        "Per pair, ∇log π(y_c) and ∇log π(y_r) are "
        f"{similar} (cosine: median {np.median(cos):.2f} over {cos.size} training pairs at "
        f"the SFT model, 10th–90th percentile {np.percentile(cos, 10):.2f} to "
        f"{np.percentile(cos, 90):.2f}). But a step on a batch moves every sequence that "
        "shares features with the batch, not only the batch's own pairs: along the batch "
        "direction G = mean(g_c − g_r), log π(y_c) changes by η·g_c·G and log π(y_r) by "
        f"η·g_r·G to first order. At the SFT model that step lowers {align['rejected_falls']:.0%} "
        f"of the rejected log-probabilities and also {align['chosen_falls']:.0%} of the chosen "
        f"ones; on average it lifts a chosen response by {mean_c / abs(mean_r):.2f} of what "
        f"it takes from a rejected one. {path_text} Nothing in the loss holds the chosen "
        "responses at their level: once the margin is being won, lowering both sides "
        "serves it as well as raising one."
    )
    grad = toy["grad_both_down"]
    kl_r, kl_d = ev["RPO"]["kl"][-1], d["kl"][-1]
    sc_r, sc_d, sc_0 = ev["RPO"]["score"][-1], d["score"][-1], d["score"][0]
    anchor = (
        f"With α = {nll_coef}, RPO ends {'closer to' if kl_r < kl_d else 'further from'} the "
        f"reference (KL {num(kl_r, 2)} against DPO's {num(kl_d, 2)} nats) and moves the hidden "
        f"score {'less' if abs(sc_r - sc_0) < abs(sc_d - sc_0) else 'more'} ({sc_r:.3f} against "
        f"{sc_d:.3f}; SFT {sc_0:.3f}): α sets the balance between the anchor and the margin."
    )

    sections = [
        f"""\
DPO trains on fixed pairs (prompt x, chosen y_c, rejected y_r) with the loss

  L = −log σ(β·Δ),  Δ = [log π(y_c∣x) − log π_ref(y_c∣x)] − [log π(y_r∣x) − log π_ref(y_r∣x)]

(`jaxrl.core.dpo_loss`). It depends on the two log-probabilities only through their
difference, and its gradient is

  ∇θ L = −β·σ(−β·Δ)·[∇θ log π(y_c∣x) − ∇θ log π(y_r∣x)].

Nothing in it asks log π(y_c) to go up. "Chosen up by 1 nat" and "chosen down 2,
rejected down 3" have the same Δ and the same loss:

```python
{_guide.source(same_margin_same_loss)}
```

gives a loss of {toy["loss_chosen_up"]:.4f} for both, and ∂L/∂log π(y_c) =
{grad[0]:.4f}, ∂L/∂log π(y_r) = {grad[1]:.4f}: equal and opposite pulls whatever the
absolute level.""",
        f"""\
## The experiment

The preference task of `jaxrl.llm` (a prompt of digits; completions scored by a hidden
rule, pairs labelled by Bradley–Terry sampling from it). SFT for {sft_steps} updates on base
completions ({sft_seconds:.0f} s), then DPO (β = {beta}, lr {lr:g}, {dpo_steps} updates) from
the SFT model, which is also the frozen reference; RPO is the same with an NLL term
α·(−log π(y_c)/|y_c|), α = {nll_coef}, added to the loss ({dpo_seconds:.0f} s for both).
The log-probs are those of {configs["DPO"].eval_pairs} fixed training pairs; the samples are
drawn at temperature 1 from {configs["DPO"].eval_prompts} held-out prompts.

{_guide.table(["", "SFT (start)", "after DPO", "after RPO"], rows)}

{fig_link}

{verdict}""",
        f"""\
## Why

1. **Only the gap is trained.** As above: any move that lowers log π(y_r) by more than
   it lowers log π(y_c) lowers the loss.
2. **One step moves every response.** {shared_text}
3. **The data is off-policy.** Both responses were sampled from the base distribution,
   not from the policy being trained. Pushing the rejected responses down frees
   probability mass, and it goes wherever the network's generalisation puts it: the
   policy's own samples went from log π = {own["SFT"]:.2f} (SFT) to {own["DPO"]:.2f} (DPO),
   i.e. the policy concentrates on sequences that are in neither column of the data.

That is what the study note's answer ("the sampling and the Bradley–Terry loss, which
only maximises the gap between positive and negative") comes to in numbers. It is not
necessarily harmful (the held-out preference accuracy and the hidden score are the
numbers to watch), but it means DPO's implicit reward can rise while the likelihood of
the very responses it was told to prefer falls.""",
        f"""\
## The NLL term (RPO) keeps the chosen likelihood up

Adding α·(−log π(y_c)/|y_c|) (`dpo_loss(..., nll_coef=α, chosen_lengths=...)`, the RPO
loss of Pang et al. 2024) gives the chosen responses an absolute pull upward: after RPO
their log-probability is {rpo_c:.2f}, against {c1:.2f} after plain DPO (SFT: {c0:.2f}),
with a margin of {ev["RPO"]["train_margin"][-1]:.2f} (DPO: {m1:.2f}). {anchor}
Guide 6 compares DPO with RLHF-PPO and GRPO, which sample from the policy itself
(on-policy) and so do not have this mismatch.""",
    ]
    page.write(TITLE, sections)
    return out


if __name__ == "__main__":
    _guide.main(run, __doc__.splitlines()[0])
