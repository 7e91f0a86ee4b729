"""Guide 6: RLHF with PPO vs DPO vs GRPO on the same preference task.

    python examples/guides/06_rlhf_dpo_grpo.py [--quick] [--out-dir docs/guides]

Writes docs/guides/06-rlhf-dpo-grpo.md and its figure. One SFT model and one reward
model (``examples/rlhf_pipeline.py``'s ``train_stages``), then from the same SFT model:
RLHF-PPO against the reward model (the settings of that example's ``run_ppo``, with
its stages timed), GRPO against the same reward model, and DPO on preference pairs.
Then what the reward model is still good for: scoring samples, and best-of-n reranking
without any training.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guide  # noqa: E402

from jaxrl.llm import (  # noqa: E402
    DPOConfig,
    GenerationConfig,
    TrainState,
    generate,
    make_dpo_batch,
    make_dpo_update,
    make_optimizer,
    reward_scores,
    train_dpo,
)
from jaxrl.llm.grpo import GRPOConfig, train_grpo  # noqa: E402
from jaxrl.llm.rlhf import STAGES as RLHF_STAGES  # noqa: E402
from jaxrl.llm.rlhf import RLHFConfig, train_rlhf  # noqa: E402
from jaxrl.llm.tasks import make_task  # noqa: E402
from jaxrl.llm.training import default_model_config  # noqa: E402

TITLE = "RLHF with PPO vs DPO vs GRPO: what each trains, what it costs, what it reaches"
# One compiled program for the reward model's forward pass (op by op, each of its
# operations would be compiled on its own: most of the scoring time at small budgets).
score_samples = jax.jit(reward_scores, static_argnums=1)


def num_params(params) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(params)))


def best_of_n(policy, rm, task, ns: tuple[int, ...], num_prompts: int, key) -> dict:
    """Sample n completions per held-out prompt, keep the reward model's favourite.

    Returns the mean hidden score of the kept completion for each n, and the correlation
    between reward-model score and hidden score over all samples.
    """
    n_max = max(ns)
    prompts = task.prompts("heldout", num_prompts, seed=11)
    # n copies of every prompt, sample-major: row k·N + i is the k-th sample of prompt i
    prompts = jax.tree.map(lambda x: jnp.tile(x, (n_max,) + (1,) * (x.ndim - 1)), prompts)
    tokens, mask = prompts.tokens, prompts.mask
    gen = generate(
        policy.params,
        policy.model_config,
        GenerationConfig(max_new_tokens=task.completion_len),
        tokens,
        mask,
        key,
    )
    rm_score = score_samples(rm.params, rm.model_config, tokens, mask, gen.tokens, gen.mask)
    hidden = task.score(prompts, gen.tokens, gen.mask)
    rm_score = np.asarray(rm_score).reshape(n_max, num_prompts)
    hidden = np.asarray(hidden).reshape(n_max, num_prompts)
    out = {}
    for n in ns:
        pick = rm_score[:n].argmax(0)
        out[n] = float(hidden[pick, np.arange(num_prompts)].mean())
    corr = float(np.corrcoef(rm_score.ravel(), hidden.ravel())[0, 1])
    return {"score": out, "correlation": corr}


def rm_score_of(policy_params, model_config, rm, task, num_prompts: int, key) -> float:
    """Mean reward-model score of a policy's samples on held-out prompts."""
    prompts = task.prompts("heldout", num_prompts, seed=2)
    tokens, mask = jnp.asarray(prompts.tokens), jnp.asarray(prompts.mask)
    gen = generate(
        policy_params,
        model_config,
        GenerationConfig(max_new_tokens=task.completion_len),
        tokens,
        mask,
        key,
    )
    scores = score_samples(rm.params, rm.model_config, tokens, mask, gen.tokens, gen.mask)
    return float(jnp.mean(scores))


def dpo_step_seconds(config: DPOConfig, params, task, repeats: int) -> float:
    """Wall time of one compiled DPO update on a batch of ``config.batch_size`` pairs."""
    pairs = task.preference_pairs("train", config.batch_size, seed=5)
    batch = make_dpo_batch(params, config.model, pairs)
    optimizer = make_optimizer(
        config.learning_rate,
        config.num_steps,
        config.warmup_steps,
        config.weight_decay,
        config.max_grad_norm,
    )
    state = TrainState(params, optimizer.init(params), jnp.asarray(0, jnp.int32))
    update = jax.jit(make_dpo_update(config))
    jax.block_until_ready(update(state, batch))  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        state, _ = update(state, batch)
    jax.block_until_ready(state)
    return (time.perf_counter() - start) / repeats


def stage_times(metrics: dict, stages) -> dict[str, float]:
    """Median seconds per step of each stage (the first, compiling step left out)."""
    return {s: float(np.median(metrics[f"time_{s}"][1:])) for s in stages if f"time_{s}" in metrics}


def figure(page, rlhf, grpo, dpo, bon: dict) -> str:
    plt = _guide.plt()
    fig, (ax_score, ax_rm, ax_kl, ax_bon) = plt.subplots(1, 4, figsize=(19, 4.2))
    runs = (
        ("RLHF-PPO", rlhf.evals, "kl_ref", "o-"),
        ("GRPO", grpo.evals, "kl_ref", "s-"),
        ("DPO", dpo.evals, "kl", "^-"),
    )
    for name, ev, kl_key, style in runs:  # x: the share of each run's updates done
        x = np.asarray(ev["step"]) / max(ev["step"][-1], 1)
        ax_score.plot(x, ev["score"], style, label=name)
        ax_kl.plot(x, ev[kl_key], style, label=name)
        if "rm_score" in ev:
            ax_rm.plot(x, ev["rm_score"], style, label=name)
    ax_rm.set(title="reward-model score (held-out)", xlabel="fraction of the run")
    ax_score.set(title="hidden true score of samples (held-out)", xlabel="fraction of the run")
    ax_kl.set(title="KL(π ‖ π_ref) per completion", xlabel="fraction of the run")
    ns = sorted(bon["score"])
    ax_bon.plot(ns, [bon["score"][n] for n in ns], "o-", color="k")
    ax_bon.set_xscale("log", base=2)
    ax_bon.set(
        title="best-of-n from SFT, picked by the reward model",
        xlabel="n samples per prompt",
        ylabel="hidden score of the pick",
    )
    for ax in (ax_score, ax_rm, ax_kl, ax_bon):
        ax.grid(alpha=0.3)
    ax_score.legend(fontsize=8)
    ax_kl.legend(fontsize=8)
    ax_rm.legend(fontsize=8)
    return page.save(fig, "compare")


def run(quick: bool, out_dir: Path) -> dict:
    page = _guide.Page(__file__, quick, out_dir)
    example = _guide.load_example("rlhf_pipeline")
    model = {}
    if quick:
        sft_steps, rm_steps, rl_steps, dpo_steps, ns, prompts = 24, 24, 3, 8, (1, 2, 4), 64
        # a one-layer model (the layers are a Python loop, each compiled in every program);
        # RLHF-PPO and GRPO take it from the SFT model, DPO from its config
        model = {"model": default_model_config(num_layers=1)}
    else:
        sft_steps, rm_steps, rl_steps, dpo_steps = 500, 500, 100, 400
        ns, prompts = (1, 2, 4, 8, 16), 256
    seed = 0

    def quiet(*args, **kwargs):
        pass

    times = {}
    start = time.perf_counter()
    sft, rm = example.train_stages(sft_steps, rm_steps, seed, log=quiet, sizes=model)
    times["SFT + reward model"] = time.perf_counter() - start
    task = make_task("preference")

    # quick mode: evaluate only before and after, on fewer prompts
    evals = dict(eval_every=rl_steps, eval_prompts=64) if quick else dict(eval_every=rl_steps // 10)
    rlhf_config = RLHFConfig(task="preference", num_steps=rl_steps, kl_coef=0.05, **evals)
    start = time.perf_counter()
    rlhf = train_rlhf(rlhf_config, jax.random.PRNGKey(1000 + seed), sft, rm, time_stages=True)
    times["RLHF-PPO"] = time.perf_counter() - start

    grpo_config = GRPOConfig(
        task="preference",
        num_steps=rl_steps,
        num_prompts=8,
        group_size=8,  # 64 completions per step, as RLHF-PPO's 64 prompts
        missing_eos_penalty=2.0,  # as RLHF's default: the reward model likes unfinished text
        learning_rate=3e-4,  # the page's setting (GRPOConfig's default is 1e-5 since)
        **evals,
    )
    start = time.perf_counter()
    grpo = train_grpo(grpo_config, jax.random.PRNGKey(2000 + seed), sft, rm, time_stages=True)
    times["GRPO"] = time.perf_counter() - start

    dpo_evals = dict(eval_every=dpo_steps // 2, eval_prompts=64, eval_pairs=128) if quick else {}
    dpo_config = DPOConfig(
        num_steps=dpo_steps,
        learning_rate=1e-3,
        **{"eval_every": dpo_steps // 8, **dpo_evals, **model},
    )
    start = time.perf_counter()
    dpo = train_dpo(dpo_config, jax.random.PRNGKey(3000 + seed), sft.params)
    times["DPO"] = time.perf_counter() - start

    key = jax.random.PRNGKey(7)
    bon = best_of_n(sft, rm, task, ns, prompts, key)
    dpo_rm = rm_score_of(dpo.params, dpo.model_config, rm, task, prompts, key)
    dpo_step = dpo_step_seconds(dpo_config, sft.params, task, 3 if quick else 20)
    rlhf_steps = float(np.median(rlhf.metrics["step_time"][1:]))
    grpo_times = stage_times(grpo.metrics, RLHF_STAGES)
    grpo_step = float(np.median(grpo.metrics["step_time"][1:]))
    sizes = {
        "policy": num_params(sft.params),
        "reward model": num_params(rm.params),
    }
    hacked = {"RLHF-PPO": example.hacked(rlhf.evals), "GRPO": example.hacked(grpo.evals)}

    first = rlhf.evals
    results = {
        "SFT (start)": {
            "score": first["score"][0],
            "rm": first["rm_score"][0],
            "kl": 0.0,
            "length": first["length"][0],
        },
        "RLHF-PPO": {
            "score": rlhf.evals["score"][-1],
            "rm": rlhf.evals["rm_score"][-1],
            "kl": rlhf.evals["kl_ref"][-1],
            "length": rlhf.evals["length"][-1],
        },
        "GRPO": {
            "score": grpo.evals["score"][-1],
            "rm": grpo.evals["rm_score"][-1],
            "kl": grpo.evals["kl_ref"][-1],
            "length": grpo.evals["length"][-1],
        },
        "DPO": {
            "score": dpo.evals["score"][-1],
            "rm": dpo_rm,
            "kl": dpo.evals["kl"][-1],
            "length": dpo.evals["length"][-1],
        },
    }
    results = {k: {kk: float(vv) for kk, vv in v.items()} for k, v in results.items()}
    fig_link = figure(page, rlhf, grpo, dpo, bon)

    reach_rows = [
        [name, f"{r['score']:.3f}", f"{r['rm']:.3f}", f"{r['kl']:.2f}", f"{r['length']:.1f}"]
        for name, r in results.items()
    ]
    sft_score = results["SFT (start)"]["score"]
    per_nat = {  # hidden-score gain over SFT per nat of KL to the reference
        k: (results[k]["score"] - sft_score) / max(results[k]["kl"], 1e-6)
        for k in ("RLHF-PPO", "GRPO", "DPO")
    }
    thrifty = max(per_nat, key=per_nat.get)
    for row in reach_rows:
        row.append(f"{per_nat[row[0]]:+.3f}" if row[0] in per_nat else "—")
    p, rmp = sizes["policy"], sizes["reward model"]
    design_rows = [
        [
            "RLHF-PPO",
            "policy and critic (reward model before)",
            "yes, trained on the pairs",
            "yes: a separate transformer, started from the reward model",
            "yes: per-token KL penalty β·(log π − log π_ref) in the reward",
            "yes, 1 per prompt",
            f"4: policy, critic, reference, reward model (≈ {2 * p + 2 * rmp:,})",
        ],
        [
            "GRPO",
            "policy",
            "here yes (or a verifier, no model)",
            "no: the group's mean reward is the baseline",
            "yes: k3 KL term in the loss",
            f"yes, {grpo_config.group_size} per prompt",
            f"3: policy, reference, reward model ({2 * p + rmp:,})",
        ],
        [
            "DPO",
            "policy",
            "no: β·log(π/π_ref) is an implicit reward",
            "no",
            "yes: inside the loss (its log-probs computed once, before training)",
            "no: fixed pairs (offline)",
            f"1 while training, the policy ({p:,})",
        ],
    ]
    rlhf_stage = stage_times(rlhf.metrics, RLHF_STAGES)
    top_rlhf = max(rlhf_stage, key=rlhf_stage.get)
    top_grpo = max(grpo_times, key=grpo_times.get)
    top_rlhf_share = rlhf_stage[top_rlhf] / sum(rlhf_stage.values())
    top_grpo_share = grpo_times[top_grpo] / sum(grpo_times.values())
    if top_rlhf.startswith("update") and top_grpo.startswith("update"):
        dominant = (
            "With a model this small and completions this short, the epochs of updates "
            "outweigh generation, which dominates at LLM scale."
        )
    else:
        dominant = "Sampling the completions is a large share of an RL step."
    critic_share = (rlhf_stage["compute_values"] + rlhf_stage["update_critic"]) / sum(
        rlhf_stage.values()
    )
    cost_rows = [
        [
            "RLHF-PPO",
            f"{rlhf_steps:.3f} s",
            f"{rlhf_config.num_prompts} completions; {rlhf_config.num_epochs} epochs × "
            f"{rlhf_config.num_minibatches} minibatches on actor and critic",
            ", ".join(f"{k} {v:.3f}" for k, v in rlhf_stage.items()),
        ],
        [
            "GRPO",
            f"{grpo_step:.3f} s",
            f"{grpo_config.num_prompts} prompts × {grpo_config.group_size} completions; "
            f"{grpo_config.num_epochs} epochs on the actor",
            ", ".join(f"{k} {v:.3f}" for k, v in grpo_times.items()),
        ],
        [
            "DPO",
            f"{dpo_step:.4f} s",
            f"{dpo_config.batch_size} pairs: one forward and backward pass, no generation",
            "—",
        ],
    ]
    best = max(("RLHF-PPO", "GRPO", "DPO"), key=lambda k: results[k]["score"])
    bon_gain = bon["score"][max(ns)] - bon["score"][1]
    out = {
        "results": results,
        "best_of_n": bon,
        "step_seconds": {"RLHF-PPO": rlhf_steps, "GRPO": grpo_step, "DPO": dpo_step},
        "rm_summary": dict(rm.summary),
        "hacked": hacked,
        "per_nat": per_nat,
        "sizes": sizes,
    }
    hacking = [name for name, h in hacked.items() if h]
    if hacking:
        hack_text = (
            f"Reward hacking in {' and '.join(hacking)}: the reward-model score rose by more "
            "than 0.25 while the hidden score did not follow (`hacked` of "
            "examples/rlhf_pipeline.py); the policy found what the reward model overrates."
        )
    else:
        hack_text = (
            "No reward hacking was detected (`hacked` of examples/rlhf_pipeline.py: the "
            "reward-model score up by more than 0.25 while the hidden score does not follow)."
        )
    corr = bon["correlation"]
    if corr > 0.2:
        scoring = (
            f"its score correlates with the hidden score at r = {corr:.2f}; it scores the DPO "
            f"policy's samples at {dpo_rm:.3f} (SFT: {results['SFT (start)']['rm']:.3f}), so it "
            "can evaluate a policy it never trained, without the hidden rule."
        )
    else:
        scoring = (
            f"its score correlates with the hidden score at only r = {corr:.2f} here, too weakly "
            "to be trusted as an evaluator (it scores the DPO policy's samples at "
            f"{dpo_rm:.3f}, SFT's at {results['SFT (start)']['rm']:.3f})."
        )
    gain = "a gain" if bon_gain > 0 else "a change"

    rm_acc, rm_true = rm.summary["heldout_accuracy"], rm.summary["heldout_true_accuracy"]
    sections = [
        f"""\
Three ways to turn preferences into a policy, all in `jaxrl.llm`, all starting from the
same SFT model on the same task: the preference task (a prompt of digits; completions
are scored by a hidden rule the learner never sees, and pairs are labelled by
Bradley–Terry sampling from it). Scores below are that hidden score, which only the
script can see.

{
            _guide.table(
                [
                    "",
                    "trains",
                    "reward model",
                    "critic",
                    "reference π_ref",
                    "samples from π while training",
                    "models in memory (parameters)",
                ],
                design_rows,
            )
        }

In one line each: **RLHF-PPO** learns a reward model from the pairs, then runs PPO
(guide 5) on the policy's own samples with a learned value function; **GRPO** drops the
critic and uses the other samples of the same prompt as the baseline
(Â = (r − mean r)/std r over the group, `jaxrl.core.group_advantages`); **DPO** skips both
the reward model and sampling and fits the policy to the pairs directly with a
classification loss whose optimum is the same KL-regularised policy
(`jaxrl.core.dpo_loss`).""",
        f"""\
## Cost per step

Each stage compiled and timed on its own; median over the steps after the first,
seconds, this CPU:

{_guide.table(["method", "one step", "what a step does", "stages (s)"], cost_rows)}

A DPO update takes {dpo_step / rlhf_steps:.0%} of the time of an RLHF-PPO step and
{dpo_step / grpo_step:.0%} of a GRPO step here: no generation, no critic, one pass. The
most expensive stage of an RLHF-PPO step is `{top_rlhf}` ({top_rlhf_share:.0%} of the
stage times), of a GRPO step `{top_grpo}` ({top_grpo_share:.0%}). {dominant}
RLHF-PPO pays for a critic that GRPO does not have ({critic_share:.0%} of its stage times
go to `compute_values` and `update_critic`).""",
        f"""\
## What they reach

SFT {sft_steps} updates; reward model {rm_steps} updates (held-out accuracy {rm_acc:.3f}
on the sampled labels, {rm_true:.3f} against the hidden score); RLHF-PPO
(β = {rlhf_config.kl_coef}) and GRPO (β = {grpo_config.kl_coef}) {rl_steps} steps of
{rlhf_config.num_prompts} completions each; DPO (β = {dpo_config.beta}) {dpo_steps} updates of
{dpo_config.batch_size} pairs. Held-out numbers: each run's own evaluation (the SFT row is
RLHF-PPO's first one), and {prompts} fresh prompts for the reward-model score of DPO's
samples:

{
            _guide.table(
                [
                    "policy",
                    "hidden score",
                    "reward-model score",
                    "KL to π_ref (nats)",
                    "length",
                    "hidden-score gain per nat of KL",
                ],
                reach_rows,
            )
        }

{fig_link}

Highest hidden score here: **{best}**; the most hidden score per nat of KL from the
reference: **{thrifty}** ({per_nat[thrifty]:+.3f}). {hack_text} Wall time of the runs:
{", ".join(f"{k} {v:.0f} s" for k, v in times.items())}.""",
        f"""\
## What the reward model is good for afterwards

DPO ends with a policy and nothing else; the RLHF pipeline also leaves a reward model,
which can be used without any more training:

- **Scoring.** Over {max(ns) * prompts} samples of the SFT model {scoring}
- **Best-of-n.** Sample n completions from the SFT model and keep the one the reward
  model likes best: the hidden score goes
  {" → ".join(f"{bon['score'][n]:.3f} (n = {n})" for n in ns)}, {gain} of
  {bon_gain:+.3f} with no gradient step, paid for with n times the sampling.
- **More RL.** It is the reward for further RLHF-PPO or GRPO runs (as here), and a
  reranker or filter for data.

Its flaw is the other side of the same coin: a policy optimised against it finds its
errors (reward hacking; `examples/rlhf_pipeline.py` shows it at β = 0), which is what the
KL penalty to π_ref is for.""",
    ]
    page.write(TITLE, sections)
    return out


if __name__ == "__main__":
    _guide.main(run, __doc__.splitlines()[0])
