"""Reward model: a transformer with a scalar head, trained on preference pairs.

    r_φ(x, y) = w_r · h_φ(x, y)_last       (the final hidden state at the last real token)
    L(φ) = mean[−log σ(r_φ(x, y_c) − r_φ(x, y_r) − m)]

(Bradley–Terry; Ouyang et al. 2022, https://arxiv.org/abs/2203.02155). Shapes: ``B``
pairs, ``P`` prompt columns, ``C`` completion columns. The reward is read at the EOS
of the completion, so padding on either side does not change it.

Use: ``result = train_reward_model(RewardModelConfig(), key, init_from=sft_params)``;
``reward_scores(result.params, result.model_config, ...)`` then scores any completion,
inside jit (the RLHF step of part 2 calls it).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl._config import replace_default, static, traced
from jaxrl.core.preference import bradley_terry_loss
from jaxrl.llm import training
from jaxrl.llm.tasks import PreferencePairs, Task, chosen_then_rejected
from jaxrl.llm.transformer import ModelConfig, Transformer

__all__ = [
    "RewardModelConfig",
    "reward_scores",
    "reward_model_loss",
    "make_reward_model_update",
    "evaluate_reward_model",
    "train_reward_model",
]


@dataclasses.dataclass(frozen=True)
class RewardModelConfig(training.StageConfig):
    """Reward-model settings, validated on construction: the fields of
    :class:`~jaxrl.llm.stage_config.StageConfig` (a preference task, and the reward
    model's own defaults) and the pairs'. ``model.reward_head`` is switched on whatever
    is given; with ``lora_rank`` > 0 the reward head trains beside the adapters."""

    task: str = replace_default(training.StageConfig, "task", "preference")
    num_steps: int = replace_default(training.StageConfig, "num_steps", 1000)
    warmup_steps: int = replace_default(training.StageConfig, "warmup_steps", 50)
    margin: float = traced(0.0, "the margin m ≥ 0 of the loss")
    num_train_pairs: int = static(10000, "labelled pairs generated for training")
    eval_pairs: int = static(1000, "held-out pairs per evaluation")

    def __post_init__(self):
        if not self.model.reward_head:
            object.__setattr__(self, "model", self.model.replace(reward_head=True))
        counts = ("num_steps", "batch_size", "num_train_pairs", "eval_every", "eval_pairs")
        self.check_stage(counts, ("warmup_steps", "weight_decay", "margin"))
        training.check_task_fits(self.preference_task(), self.model, "RewardModelConfig")


def reward_scores(
    params,
    model_config: ModelConfig,
    prompt_tokens,
    prompt_mask,
    completion_tokens,
    completion_mask,
) -> jax.Array:
    """Scalar reward ``r(x, y)`` of each (prompt, completion) row.

    Args:
        params: reward-model parameters.
        model_config: its sizes (must have ``reward_head=True``).
        prompt_tokens: ``[B, P]`` left-padded.
        prompt_mask: ``[B, P]``.
        completion_tokens: ``[B, C]`` right-padded.
        completion_mask: ``[B, C]``.

    Returns:
        ``[B]`` float32 rewards.
    """
    if not model_config.reward_head:
        raise ValueError("reward_scores needs a model_config with reward_head=True")
    tokens = jnp.concatenate([prompt_tokens, completion_tokens], 1)
    mask = jnp.concatenate([prompt_mask, completion_mask], 1)
    return Transformer(model_config).apply(params, tokens, mask).reward


def reward_model_loss(params, model_config: ModelConfig, batch: PreferencePairs, margin=0.0):
    """Bradley–Terry loss of a batch of pairs (one forward pass over chosen and rejected).

    Returns:
        ``(loss, metrics)`` from ``jaxrl.core.bradley_terry_loss``: accuracy, margin,
        rewards_chosen, rewards_rejected, plus ``loss``.
    """
    n = batch.chosen_tokens.shape[0]
    rewards = reward_scores(params, model_config, *chosen_then_rejected(batch))
    loss, metrics = bradley_terry_loss(rewards[:n], rewards[n:], margin)
    return loss, {**metrics, "loss": loss}


_jit_loss = jax.jit(reward_model_loss, static_argnums=1)
_jit_scores = jax.jit(reward_scores, static_argnums=1)


def make_reward_model_update(
    config: RewardModelConfig, model: ModelConfig | None = None
) -> Callable:
    """Pure ``update(state, batch: PreferencePairs) -> (state, metrics)`` of ``model``
    (default ``config.model``)."""
    return training.make_stage_update(
        reward_model_loss, config, model or config.model, config.margin
    )


def evaluate_reward_model(
    params, model_config: ModelConfig, pairs: PreferencePairs, margin: float = 0.0
) -> dict[str, float]:
    """Held-out numbers: loss, accuracy against the labels, margin, and against the truth.

    ``true_accuracy`` counts pairs whose hidden scores differ, and asks whether the
    reward orders them like the hidden score; ``score_correlation`` is the Pearson
    correlation of reward and hidden score over all held-out completions. Both are left
    out where the pairs carry no hidden score (NaN: a preference dataset).
    """
    loss, m = _jit_loss(params, model_config, pairs, margin)
    score = functools.partial(
        _jit_scores, params, model_config, pairs.prompt_tokens, pairs.prompt_mask
    )
    rc = np.asarray(score(pairs.chosen_tokens, pairs.chosen_mask))
    rr = np.asarray(score(pairs.rejected_tokens, pairs.rejected_mask))
    sc, sr = np.asarray(pairs.chosen_score), np.asarray(pairs.rejected_score)
    out = {"loss": float(loss), "accuracy": float(m["accuracy"]), "margin": float(m["margin"])}
    if not (np.all(np.isfinite(sc)) and np.all(np.isfinite(sr))):
        return out
    differ = sc != sr
    true_acc = np.mean((rc > rr)[differ] == (sc > sr)[differ]) if differ.any() else np.nan
    rewards, scores = np.concatenate([rc, rr]), np.concatenate([sc, sr])
    # a constant reward (the zero-initialised head) has no correlation: report 0
    corr = np.corrcoef(rewards, scores)[0, 1] if np.std(rewards) > 0 else 0.0
    return {**out, "true_accuracy": float(true_acc), "score_correlation": float(corr)}


def train_reward_model(
    config: RewardModelConfig,
    key: jax.Array,
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
    init_from=None,
    *,
    policy=None,
    task: Task | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> training.TrainResult:
    """Trains a reward model on the task's preference pairs (Bradley–Terry).

    Args:
        config: the settings.
        key: PRNG key (parameters, data order).
        progress_callback: called after each chunk with the step and latest numbers.
        init_from: the model to start from (e.g. the SFT model): a params pytree of
            ``config.model``, a ``(params, ModelConfig)`` pair, a ``TrainResult`` or a
            directory (jaxrl or Hugging Face); a loaded model replaces ``config.model``.
            Its trunk is copied, the reward head starts at zero.
        policy: another name for ``init_from`` (give one of them).
        task: any preference ``Task`` (e.g. a ``jaxrl.llm.data.DatasetTask``).
        checkpoint_dir: write a checkpoint there after every evaluation.
        resume: continue from the checkpoint in ``checkpoint_dir``.

    Returns:
        ``TrainResult``; ``evals`` holds heldout_loss, heldout_accuracy, heldout_margin
        and, where the task has hidden scores, heldout_true_accuracy and
        heldout_score_correlation per chunk.
    """
    source = training.one_source(init_from, policy)
    task = config.preference_task(task, "train_reward_model")
    init_key, train_key = jax.random.split(key)
    params, model = training.prepare_model(
        "RewardModelConfig", config.model, source, init_key, config.lora_rank,
        config.lora_alpha, reward_head=True,
    )  # fmt: skip
    train = task.preference_pairs("train", config.num_train_pairs, seed=3)
    heldout = task.preference_pairs("heldout", config.eval_pairs, seed=4)
    training.check_task_fits(
        task, model, "train_reward_model", train.prompt_tokens, train.chosen_tokens,
        train.rejected_tokens,
    )  # fmt: skip
    train, heldout = jax.tree_util.tree_map(jnp.asarray, (train, heldout))

    def evaluate(p):
        ev = evaluate_reward_model(p, model, heldout, config.margin)
        return {f"heldout_{k}": v for k, v in ev.items()}

    state, metrics, evals = training.train_chunks(
        make_reward_model_update, config, model, params, train, train_key, evaluate,
        progress_callback, checkpoint_dir, resume,
    )  # fmt: skip
    summary = {k: float(v[-1]) for k, v in evals.items()}
    return training.TrainResult(state.params, model, metrics, evals, summary)
