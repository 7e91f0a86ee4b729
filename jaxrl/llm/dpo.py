"""DPO trainer: preference optimisation of a policy against a frozen reference.

    L(θ) = mean over pairs of ℓ(Δ),
    Δ = [log π_θ(y_c|x) − log π_ref(y_c|x)] − [log π_θ(y_r|x) − log π_ref(y_r|x)]

with ℓ one of the kinds of ``jaxrl.core.dpo_loss`` (sigmoid DPO, cDPO, robust, hinge,
IPO; optional NLL term on y_c = RPO) or ``simpo_loss`` (reference-free). See Rafailov
et al. 2023, https://arxiv.org/abs/2305.18290.

The reference is the starting policy (with LoRA: the base weights, i.e. the same params
with the adapters switched off). Its sequence log-probs ``log π_ref(y|x)`` of every
training pair are computed once, before training, and stored beside the pairs
(``DPOBatch``), so a training step runs the policy only. Shapes: ``N`` pairs, ``P``
prompt columns (left-padded), ``C`` completion columns (right-padded).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl._config import in_range, positive, replace_default, require, static, traced
from jaxrl.core.preference import DPO_KINDS, dpo_loss, simpo_loss
from jaxrl.llm.generate import generate, sequence_log_probs
from jaxrl.llm.lora import reference_config
from jaxrl.llm.tasks import PreferencePairs, Task, chosen_then_rejected
from jaxrl.llm.training import (
    StageConfig,
    TrainResult,
    check_task_fits,
    make_stage_update,
    one_source,
    prepare_model,
    train_chunks,
)
from jaxrl.llm.transformer import ModelConfig

__all__ = [
    "DPOConfig",
    "DPOBatch",
    "LOSS_KINDS",
    "pair_log_probs",
    "make_dpo_batch",
    "dpo_batch_loss",
    "make_dpo_update",
    "evaluate_dpo",
    "train_dpo",
]

LOSS_KINDS = (*DPO_KINDS, "simpo")


@dataclasses.dataclass(frozen=True)
class DPOConfig(StageConfig):
    """DPO settings, validated on construction: the fields of
    :class:`~jaxrl.llm.stage_config.StageConfig` (a preference task, and DPO's own
    defaults), the loss's and the pairs'. ``model`` gives the policy's sizes (they must
    match the starting parameters); with ``lora_rank`` > 0 the frozen base is also the
    reference."""

    task: str = replace_default(StageConfig, "task", "preference")
    num_steps: int = replace_default(StageConfig, "num_steps", 400)
    learning_rate: float = replace_default(StageConfig, "learning_rate", 3e-4)
    warmup_steps: int = replace_default(StageConfig, "warmup_steps", 20)
    weight_decay: float = replace_default(StageConfig, "weight_decay", 0.0)
    eval_every: int = replace_default(StageConfig, "eval_every", 50)
    loss_kind: str = static("sigmoid", "one of LOSS_KINDS: sigmoid, robust, hinge, ipo, simpo")
    beta: float = traced(0.1, "β > 0 (for SimPO the reward scale)")
    label_smoothing: float = traced(
        0.0, "ε (sigmoid: [0, 0.5]; robust: [0, 0.5); simpo: [0, 0.5]; else 0)"
    )
    nll_coef: float = traced(0.0, "α ≥ 0, weight of the length-normalised NLL on y_c (RPO)")
    simpo_gamma: float = traced(0.5, "SimPO's target margin γ ≥ 0")
    num_train_pairs: int = static(5000, "labelled pairs generated for training")
    eval_pairs: int = static(500, "held-out pairs (and tracked training pairs) per evaluation")
    eval_prompts: int = static(256, "held-out prompts sampled at each evaluation")

    def __post_init__(self):
        if self.loss_kind not in LOSS_KINDS:
            raise ValueError(
                f"DPOConfig.loss_kind must be one of {LOSS_KINDS}, got {self.loss_kind!r}"
            )
        counts = ("num_steps", "batch_size", "num_train_pairs", "eval_every", "eval_pairs")
        non_negatives = ("nll_coef", "simpo_gamma", "weight_decay", "warmup_steps")
        self.check_stage((*counts, "eval_prompts"), non_negatives)
        require(self, "beta", positive)
        if self.loss_kind in ("hinge", "ipo"):
            require(self, "label_smoothing", in_range(0.0, 0.0))
        else:
            require(
                self, "label_smoothing", in_range(0.0, 0.5, high_open=self.loss_kind == "robust")
            )
        check_task_fits(self.preference_task(), self.model, "DPOConfig")


class DPOBatch(NamedTuple):
    """Pairs with the frozen reference's sequence log-probs."""

    prompt_tokens: jax.Array  # [N, P]
    prompt_mask: jax.Array  # [N, P]
    chosen_tokens: jax.Array  # [N, C]
    chosen_mask: jax.Array  # [N, C]
    rejected_tokens: jax.Array  # [N, C]
    rejected_mask: jax.Array  # [N, C]
    ref_chosen_logps: jax.Array  # [N] log π_ref(y_c | x)
    ref_rejected_logps: jax.Array  # [N] log π_ref(y_r | x)


def pair_log_probs(params, model_config: ModelConfig, pairs) -> tuple[jax.Array, jax.Array]:
    """Sequence log-probs ``(log π(y_c|x), log π(y_r|x))``, each ``[N]``, in one forward pass.

    ``pairs`` is a ``PreferencePairs`` or ``DPOBatch``.
    """
    n = pairs.chosen_tokens.shape[0]
    logp = sequence_log_probs(params, model_config, *chosen_then_rejected(pairs)).sum(-1)
    return logp[:n], logp[n:]


class _TokenPairs(NamedTuple):
    """The six token and mask arrays of a ``PreferencePairs`` or ``DPOBatch``."""

    prompt_tokens: jax.Array
    prompt_mask: jax.Array
    chosen_tokens: jax.Array
    chosen_mask: jax.Array
    rejected_tokens: jax.Array
    rejected_mask: jax.Array


@functools.partial(jax.jit, static_argnums=1)
def _pair_log_probs_of_tokens(params, model_config: ModelConfig, pairs: _TokenPairs):
    return pair_log_probs(params, model_config, pairs)


def _jit_pair_log_probs(params, model_config: ModelConfig, pairs):
    """:func:`pair_log_probs` compiled once per shape, whatever holds the pairs (the
    reference's ``PreferencePairs`` and the evaluation's ``DPOBatch`` share one program)."""
    return _pair_log_probs_of_tokens(params, model_config, _TokenPairs(*pairs[:6]))


def make_dpo_batch(
    ref_params, model_config: ModelConfig, pairs: PreferencePairs, chunk: int = 512
) -> DPOBatch:
    """Attaches the reference's sequence log-probs to ``pairs`` (computed once, in chunks)."""
    n = pairs.chosen_tokens.shape[0]
    rc, rr = [], []
    for start in range(0, n, chunk):
        part = jax.tree_util.tree_map(lambda x: jnp.asarray(x[start : start + chunk]), pairs)
        c, r = _jit_pair_log_probs(ref_params, model_config, part)
        rc.append(c)
        rr.append(r)
    return DPOBatch(*(jnp.asarray(x) for x in pairs[:6]), jnp.concatenate(rc), jnp.concatenate(rr))


def dpo_batch_loss(params, model_config: ModelConfig, batch: DPOBatch, config: DPOConfig):
    """The configured preference loss on a batch.

    Returns:
        ``(loss, metrics)`` as ``dpo_loss`` / ``simpo_loss`` return them, plus ``loss``.
    """
    chosen, rejected = pair_log_probs(params, model_config, batch)
    len_c = jnp.sum(batch.chosen_mask, -1).astype(jnp.float32)
    len_r = jnp.sum(batch.rejected_mask, -1).astype(jnp.float32)
    if config.loss_kind == "simpo":
        loss, metrics = simpo_loss(
            chosen, rejected, len_c, len_r, config.beta, config.simpo_gamma, config.label_smoothing
        )
        if config.nll_coef > 0:
            nll = jnp.mean(-chosen / jnp.maximum(len_c, 1.0))
            loss, metrics = loss + config.nll_coef * nll, {**metrics, "nll_loss": nll}
    else:
        loss, metrics = dpo_loss(
            chosen,
            rejected,
            batch.ref_chosen_logps,
            batch.ref_rejected_logps,
            config.beta,
            config.loss_kind,
            config.label_smoothing,
            config.nll_coef,
            len_c,
        )
    return loss, {**metrics, "loss": loss}


def make_dpo_update(config: DPOConfig, model: ModelConfig | None = None) -> Callable:
    """Pure ``update(state, batch: DPOBatch) -> (state, metrics)`` of the policy ``model``
    (default ``config.model``)."""
    return make_stage_update(dpo_batch_loss, config, model or config.model, config)


def evaluate_dpo(
    params,
    ref_params,
    model_config: ModelConfig,
    task: Task,
    heldout: DPOBatch,
    tracked: DPOBatch,
    prompts,
    key: jax.Array,
    ref_model_config: ModelConfig | None = None,
    has_score: bool = True,
) -> dict[str, float]:
    """Numbers that show what DPO did.

    ``ref_model_config`` (default ``model_config``) runs ``ref_params`` as the reference:
    with LoRA, the policy's own params with the adapters off. ``has_score=False`` (a
    preference dataset without a reward) leaves ``score`` out.

    Returns:
        ``heldout_pref_accuracy``: share of held-out pairs whose implicit reward margin
        is > 0, a tie counting one half (so the reference itself scores 0.5);
        ``heldout_margin``: their mean log-ratio Δ (β·Δ is the implicit reward margin);
        ``train_logps_chosen`` / ``train_logps_rejected``: mean sequence log-probs of fixed
        training pairs (both falling while the margin grows is likelihood
        displacement); ``train_margin`` (log-ratio Δ); ``score``: mean hidden score of
        completions sampled at temperature 1 from held-out prompts; ``length``; ``kl``:
        mean of Σ_t (log π − log π_ref) over those samples (a sequence-level KL estimate).
    """
    hc, hr = _jit_pair_log_probs(params, model_config, heldout)
    delta = (hc - heldout.ref_chosen_logps) - (hr - heldout.ref_rejected_logps)
    tc, tr = _jit_pair_log_probs(params, model_config, tracked)
    tdelta = (tc - tracked.ref_chosen_logps) - (tr - tracked.ref_rejected_logps)
    gen = generate(
        params,
        model_config,
        task.generation_config(task.completion_len),
        prompts.tokens,
        prompts.mask,
        key,
    )
    ref_lp = sequence_log_probs(
        ref_params,
        ref_model_config or model_config,
        prompts.tokens,
        prompts.mask,
        gen.tokens,
        gen.mask,
    )
    out = {
        "heldout_pref_accuracy": float(jnp.mean((delta > 0) + 0.5 * (delta == 0))),
        "heldout_margin": float(jnp.mean(delta)),
        "train_logps_chosen": float(jnp.mean(tc)),
        "train_logps_rejected": float(jnp.mean(tr)),
        "train_margin": float(jnp.mean(tdelta)),
        "length": float(jnp.mean(jnp.sum(gen.mask, -1))),
        "kl": float(jnp.mean(jnp.sum(gen.log_probs - ref_lp, -1))),
    }
    if has_score:
        out["score"] = float(jnp.mean(task.score(prompts, gen.tokens, gen.mask)))
    return out


def train_dpo(
    config: DPOConfig,
    key: jax.Array,
    policy=None,
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
    *,
    init_from=None,
    task: Task | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> TrainResult:
    """Runs DPO from ``policy``, which also serves as the frozen reference.

    Args:
        config: the settings.
        key: PRNG key (LoRA init, data order, evaluation sampling).
        policy: the starting policy (typically the SFT model): a params pytree of
            ``config.model``, a ``(params, ModelConfig)`` pair, a ``TrainResult`` or a
            directory (jaxrl or Hugging Face); a loaded model replaces ``config.model``.
        progress_callback: called after each chunk with the step and latest numbers.
        init_from: another name for ``policy`` (give one of them).
        task: any preference ``Task`` (e.g. a ``jaxrl.llm.data.DatasetTask`` of
            prompt/chosen/rejected rows); default the config's.
        checkpoint_dir: write a checkpoint there after every evaluation.
        resume: continue from the checkpoint in ``checkpoint_dir``.

    Returns:
        ``TrainResult``; ``metrics`` per update (loss, margin, accuracy, rewards_chosen,
        rewards_rejected, logps_chosen, logps_rejected, preference_loss, nll_loss,
        grad_norm); ``evals`` per chunk (see ``evaluate_dpo``; no ``score`` where the
        task's pairs carry no hidden score).
    """
    policy = one_source(init_from, policy)
    if policy is None:
        raise ValueError("train_dpo needs policy: the starting model (e.g. the SFT result)")
    task = config.preference_task(task, "train_dpo")
    train_key, eval_key = jax.random.split(key)
    params, model = prepare_model(
        "DPOConfig", config.model, policy, jax.random.fold_in(key, 7), config.lora_rank,
        config.lora_alpha,
    )  # fmt: skip
    params = jax.tree_util.tree_map(jnp.asarray, params)
    # LoRA: the reference is the base weights — the same params, adapters off
    ref_model = reference_config(model) if config.lora_rank else model
    train_pairs = task.preference_pairs("train", config.num_train_pairs, seed=5)
    heldout_pairs = task.preference_pairs("heldout", config.eval_pairs, seed=6)
    check_task_fits(
        task, model, "train_dpo", train_pairs.prompt_tokens, train_pairs.chosen_tokens,
        train_pairs.rejected_tokens,
    )  # fmt: skip
    train = make_dpo_batch(params, ref_model, train_pairs)
    heldout = make_dpo_batch(params, ref_model, heldout_pairs)
    tracked = jax.tree_util.tree_map(lambda x: x[: config.eval_pairs], train)
    prompts = jax.tree_util.tree_map(
        jnp.asarray, task.prompts("heldout", config.eval_prompts, seed=7)
    )
    has_score = getattr(task, "has_score", True)  # a preference dataset may have no reward

    def evaluate(p):
        return evaluate_dpo(
            p, p if config.lora_rank else params, model, task, heldout, tracked, prompts,
            eval_key, ref_model, has_score,
        )  # fmt: skip

    state, metrics, evals = train_chunks(
        make_dpo_update, config, model, params, train, train_key, evaluate, progress_callback,
        checkpoint_dir, resume,
    )  # fmt: skip
    summary = {k: float(v[-1]) for k, v in evals.items()}
    for name in ("score", "train_logps_chosen", "train_logps_rejected"):
        if name in evals:
            summary[f"initial_{name}"] = float(evals[name][0])
    return TrainResult(state.params, model, metrics, evals, summary)
