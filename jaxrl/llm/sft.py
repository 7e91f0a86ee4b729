"""Supervised fine-tuning: next-token cross-entropy on completions, the prompt masked out.

    L(θ) = − Σ_{b,t} m_{b,t} · log π_θ(y_{b,t} | x_b, y_{b,<t}) / Σ_{b,t} m_{b,t}

(a token mean over the completion tokens, the EOS included, of every row in the batch).
Shapes: ``B`` rows, ``P`` prompt columns, ``C`` completion columns (layout in
``jaxrl.llm.transformer``).

Use: ``result = train_sft(SFTConfig(task="addition"), jax.random.PRNGKey(0))``; then
``save_model(dir, result.params, result.model_config)`` for the next stages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl._config import static
from jaxrl.llm.generate import generate
from jaxrl.llm.tasks import Prompts, SFTData, Task
from jaxrl.llm.training import (
    StageConfig,
    TrainResult,
    TrainState,
    check_task_fits,
    make_stage_update,
    one_source,
    prepare_model,
    stage_optimizer,
    train_chunks,
)
from jaxrl.llm.transformer import ModelConfig, Transformer, init_params

__all__ = [
    "SFTConfig",
    "sft_loss",
    "init_sft_state",
    "make_sft_update",
    "evaluate_policy",
    "train_sft",
]


@dataclasses.dataclass(frozen=True)
class SFTConfig(StageConfig):
    """Supervised fine-tuning settings, validated on construction: the fields of
    :class:`~jaxrl.llm.stage_config.StageConfig` (whose defaults are SFT's) and the data's.
    Each field carries its help text (``dataclasses.fields(SFTConfig)``)."""

    num_train_examples: int = static(20000, "size of the generated training set")
    eval_prompts: int = static(256, "held-out prompts answered at each evaluation")

    def __post_init__(self):
        counts = ("num_steps", "batch_size", "num_train_examples", "eval_every", "eval_prompts")
        self.check_stage(counts, ("warmup_steps", "weight_decay"))
        check_task_fits(self.make_task(), self.model, "SFTConfig")


def sft_loss(params, model_config: ModelConfig, batch: SFTData):
    """Masked next-token cross-entropy on the completion (see the module docstring).

    Args:
        params: transformer parameters.
        model_config: its sizes.
        batch: ``SFTData`` with prompts ``[B, P]`` and completions ``[B, C]``.

    Returns:
        ``(loss, metrics)``: scalar loss; metrics ``loss``, ``token_accuracy`` (argmax
        equals the target, over completion tokens), ``num_tokens``.
    """
    prompt_len = batch.prompt_tokens.shape[1]
    num_new = batch.completion_tokens.shape[1]
    tokens = jnp.concatenate([batch.prompt_tokens, batch.completion_tokens], 1)
    mask = jnp.concatenate([batch.prompt_mask, batch.completion_mask], 1)
    logits = Transformer(model_config).apply(params, tokens, mask).logits
    logits = logits[:, prompt_len - 1 : prompt_len - 1 + num_new].astype(jnp.float32)
    target = jnp.asarray(batch.completion_tokens, jnp.int32)
    weight = (jnp.asarray(batch.completion_mask) > 0).astype(jnp.float32)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, target)
    count = jnp.maximum(jnp.sum(weight), 1.0)
    loss = jnp.sum(nll * weight) / count
    correct = (jnp.argmax(logits, -1) == target).astype(jnp.float32)
    metrics = {
        "loss": loss,
        "token_accuracy": jnp.sum(correct * weight) / count,
        "num_tokens": jnp.sum(weight),
    }
    return loss, metrics


_jit_sft_loss = jax.jit(sft_loss, static_argnums=1)


def init_sft_state(config: SFTConfig, key: jax.Array, params=None) -> TrainState:
    """Fresh parameters of ``config.model`` (or ``params``) and optimiser state."""
    if params is None:
        params = init_params(config.model, key)
    return TrainState(params, stage_optimizer(config).init(params), jnp.asarray(0, jnp.int32))


def make_sft_update(config: SFTConfig, model: ModelConfig | None = None) -> Callable:
    """Pure ``update(state, batch: SFTData) -> (state, metrics)``: an AdamW step on
    ``sft_loss`` of ``model`` (default ``config.model``)."""
    return make_stage_update(sft_loss, config, model or config.model)


def evaluate_policy(
    params,
    model_config: ModelConfig,
    task: Task,
    prompts: Prompts,
    key: jax.Array,
    completion_len: int | None = None,
) -> dict[str, float]:
    """Task score of the policy's completions of ``prompts``.

    Verifiable tasks are answered greedily (``accuracy`` = share of exact answers,
    ``score`` = mean task score); the preference task is sampled at temperature 1
    (``score`` = mean hidden score, ``length`` = mean completion length). Generation
    stops at the task's EOS ids (``task.generation_config``). A task without a score
    (``task.has_score`` False, or NaN scores) gives ``length`` only.
    """
    greedy = task.kind == "verifiable"
    gen_config = task.generation_config(completion_len or task.completion_len, greedy=greedy)
    gen = generate(params, model_config, gen_config, prompts.tokens, prompts.mask, key)
    out = {"length": float(np.asarray(gen.mask).sum(1).mean())}
    if not getattr(task, "has_score", True):
        return out
    score = np.asarray(task.score(prompts, gen.tokens, gen.mask))
    if np.all(np.isfinite(score)):
        out["score"] = float(score.mean())
        if greedy:
            out["accuracy"] = float(np.mean(score == 1.0))
    return out


def train_sft(
    config: SFTConfig,
    key: jax.Array,
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
    init_from=None,
    *,
    policy=None,
    task: Task | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> TrainResult:
    """Trains a transformer on the task's prompt–completion pairs.

    Update ``t`` trains on rows ``t·B … t·B + B − 1`` of epoch-wise shuffles of the
    training split (``jaxrl.llm.training.take_batch``), so a resumed run repeats the
    batches of an uninterrupted one.

    Args:
        config: the settings.
        key: PRNG key (parameters, data order, evaluation sampling).
        progress_callback: called after each chunk of ``eval_every`` updates with the
            step count and the latest numbers.
        init_from: the starting model: a params pytree of ``config.model``, a
            ``(params, ModelConfig)`` pair, a ``TrainResult``, or a directory (jaxrl or
            Hugging Face); a loaded model replaces ``config.model``. None: fresh params.
        policy: another name for ``init_from`` (give one of them).
        task: any ``Task`` (e.g. a ``jaxrl.llm.data.DatasetTask``); default the config's.
        checkpoint_dir: write a checkpoint there after every evaluation.
        resume: continue from the checkpoint in ``checkpoint_dir``.

    Returns:
        ``TrainResult``: ``metrics`` per update (loss, token_accuracy, num_tokens,
        grad_norm); ``evals`` per chunk (step, wall_time, heldout_loss, heldout_length, and
        heldout_score / heldout_accuracy (verifiable tasks) where the task has a score);
        ``summary`` with the last evaluation. With ``lora_rank`` the params hold the
        adapters (``jaxrl.llm.lora.merge_lora`` folds them in).
    """
    task = config.make_task() if task is None else task
    source = one_source(init_from, policy)
    init_key, train_key, eval_key = jax.random.split(key, 3)
    params, model = prepare_model(
        "SFTConfig", config.model, source, init_key, config.lora_rank, config.lora_alpha
    )
    data = task.sft_data("train", config.num_train_examples, seed=1)
    heldout = task.sft_data("heldout", config.eval_prompts, seed=2)
    prompts = task.prompts("heldout", config.eval_prompts, seed=2)
    check_task_fits(task, model, "train_sft", data.prompt_tokens, data.completion_tokens)
    data, heldout, prompts = jax.tree_util.tree_map(jnp.asarray, (data, heldout, prompts))

    def evaluate(params):
        ev = evaluate_policy(params, model, task, prompts, eval_key)
        out = {f"heldout_{k}": v for k, v in ev.items()}
        out["heldout_loss"] = float(_jit_sft_loss(params, model, heldout)[0])
        return out

    state, metrics, evals = train_chunks(
        make_sft_update, config, model, params, data, train_key, evaluate, progress_callback,
        checkpoint_dir, resume,
    )  # fmt: skip
    summary = {k: float(v[-1]) for k, v in evals.items()}
    summary["final_train_loss"] = float(np.mean(metrics["loss"][-config.eval_every :]))
    return TrainResult(state.params, model, metrics, evals, summary)
