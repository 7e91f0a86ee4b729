"""What the configs of the LLM stages share: their common fields and checks.

:class:`StageConfig` is the base of the supervised stages' Configs (SFT, reward model,
DPO): the task, the model sizes and the optimiser fields, each with its help text, and
the field checks they have in common. :class:`RLConfig` is the base of the RL stages'
Configs (GRPO, RLHF-PPO): a pytree whose static fields fix the rollout's shapes and whose
numeric fields are traced leaves. Every check raises a one-line ValueError that names the
field, its value and what is allowed. :func:`check_lora_fields`, :func:`check_task_fits`,
:func:`freeze_options` and :func:`config_to_dict` serve every LLM trainer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxrl._config import (
    in_range,
    non_negative,
    one_of,
    positive,
    positive_int,
    require,
    static,
    traced,
)
from jaxrl.core.sequence import AGGREGATIONS
from jaxrl.llm.tasks import TOKENIZER, Task, make_task
from jaxrl.llm.transformer import ModelConfig

__all__ = [
    "StageConfig",
    "RLConfig",
    "default_model_config",
    "check_task_fits",
    "check_lora_fields",
    "freeze_options",
    "config_to_dict",
]


def default_model_config(max_len: int = 32, **changes) -> ModelConfig:
    """The tiny default: 2 layers, width 64, 4 heads, the task tokenizer's vocabulary."""
    return ModelConfig(vocab_size=TOKENIZER.vocab_size, max_len=max_len, **changes)


@dataclasses.dataclass(frozen=True)
class StageConfig:
    """What the SFT, reward-model and DPO Configs share: task, sizes, optimiser and checks.

    The defaults are SFT's; a stage's Config changes them with
    :func:`jaxrl._config.replace_default`. The learning rate follows a linear warm-up, then
    a cosine decay to 10 % (``jaxrl.llm.training.make_optimizer``). These Configs are not
    pytrees (the trainers close over them); ``static`` and ``traced`` mark which fields
    fix shapes, and carry each field's help text.
    """

    task: str = static("addition", "registered task name (jaxrl.llm.tasks.TASKS)")
    task_options: tuple = static(
        (), "options of that task, a dict or (name, value) pairs, stored as sorted pairs"
    )
    model: ModelConfig = dataclasses.field(
        default_factory=default_model_config,
        metadata={"doc": "transformer sizes (max_len must hold prompt + completion)"},
    )
    num_steps: int = static(2000, "optimiser updates; a multiple of eval_every")
    batch_size: int = static(64, "rows (prompt–completion pairs or preference pairs) per update")
    learning_rate: float = traced(1e-3, "peak AdamW learning rate")
    warmup_steps: int = static(100, "linear warm-up updates")
    weight_decay: float = traced(0.01, "AdamW decoupled weight decay")
    max_grad_norm: float = traced(1.0, "global-norm gradient clipping")
    eval_every: int = static(250, "updates between evaluations (one compiled chunk)")
    lora_rank: int = static(
        0, "> 0 trains rank-r LoRA adapters on a pretrained-type model, the base frozen; 0 all"
    )
    lora_alpha: float = static(16.0, "LoRA's α (the adapters' update is scaled by α / r)")

    def make_task(self) -> Task:
        """The task this config names (raises ValueError for an unknown name or option)."""
        return make_task(self.task, **dict(self.task_options))

    def check_stage(self, counts: tuple[str, ...], non_negatives: tuple[str, ...]) -> None:
        """Stores ``task_options`` as sorted pairs (so the config hashes) and raises a
        one-line ValueError naming a field unless ``counts`` are integers > 0,
        ``learning_rate`` and ``max_grad_norm`` > 0, ``non_negatives`` >= 0, the LoRA
        fields valid and ``num_steps`` a multiple of ``eval_every``."""
        object.__setattr__(self, "task_options", freeze_options(self.task_options))
        for name in counts:
            require(self, name, positive_int)
        for name in ("learning_rate", "max_grad_norm"):
            require(self, name, positive)
        for name in non_negatives:
            require(self, name, non_negative)
        check_lora_fields(self)
        if self.num_steps % self.eval_every:
            raise ValueError(
                f"{type(self).__name__}.num_steps ({self.num_steps}) must be a multiple of "
                f"eval_every ({self.eval_every})"
            )

    def preference_task(self, task: Task | None = None, owner: str | None = None) -> Task:
        """``task`` (default: the config's), with a one-line ValueError unless it is a
        preference task; ``owner`` names the caller in the message."""
        task = self.make_task() if task is None else task
        if task.kind != "preference":
            raise ValueError(
                f"{owner or type(self).__name__ + '.task'} needs a preference task, got "
                f"{task.name!r} (kind {task.kind!r})"
            )
        return task


@dataclasses.dataclass(frozen=True)
class RLConfig:
    """What the GRPO and RLHF-PPO Configs share: rollout sizes, the clipped policy update,
    the optimiser, evaluation, LoRA, and their checks.

    The fields :mod:`jaxrl.llm.roles` and the RL loop read. The defaults are GRPO's; a
    subclass (decorated with :func:`jaxrl._config.config`, which makes it a pytree)
    declares a field again to change its default. Static fields fix shapes and program
    structure; the others are traced leaves.
    """

    task: str = static("", "task name; '' = the task recorded with the --from model, else addition")
    task_options: tuple = static((), "task options: a dict or (name, value) pairs")
    num_steps: int = static(300, "RL steps (one rollout and its updates each)")
    num_prompts: int = static(32, "prompts per step, B")
    max_new_tokens: int = static(0, "completion columns; 0 = the task's completion length")
    temperature: float = static(1.0, "sampling temperature τ (log-probs at τ)")
    num_epochs: int = static(2, "inner epochs μ over each rollout (old log-probs kept)")
    num_minibatches: int = static(1, "minibatches per inner epoch")
    warmup_steps: int = static(10, "steps of linear learning-rate warm-up")
    aggregation: str = static("seq_mean_token_mean", "loss aggregation (core.AGGREGATIONS)")
    max_len_norm: int = static(0, "constant length of seq_mean_token_sum_norm; 0 = C")
    kl_estimator: str = static("k3", "KL estimator of the loss term: k1, k2 or k3")
    eval_every: int = static(10, "steps between held-out evaluations")
    eval_prompts: int = static(256, "held-out prompts per evaluation")
    num_train_prompts: int = static(10000, "training prompts generated by the task")
    lora_rank: int = static(0, "LoRA rank on the policy; 0 = full fine-tuning")
    lora_alpha: float = static(16.0, "LoRA α (the update is scaled by α / rank)")
    # 1e-5 (GRPO): from a policy already near its ceiling (SFT on addition at 0.988 held-out
    # greedy accuracy) 3e-4 lost 8 points in 300 steps (0.906), 1e-4 lost 2.3 (0.965), 3e-5
    # lost 1.5 (0.973) and 1e-5 kept it (0.980, within the ±0.009 error of 256 prompts). Most
    # groups then score alike, the gradient is mostly noise, and Adam's steps are ~lr whatever
    # the gradient's size. A weak SFT model gains more with 3e-4 (examples/grpo_verifiable.py).
    learning_rate: float = traced(1e-5, "peak AdamW learning rate of the policy")
    kl_coef: float = traced(0.04, "β, weight of the KL to the frozen reference")
    clip_eps_low: float = traced(0.2, "ε_low: the ratio is clipped below at 1 − ε_low")
    clip_eps_high: float = traced(0.2, "ε_high: the ratio is clipped above at 1 + ε_high")
    entropy_coef: float = traced(0.0, "weight of the entropy bonus of the policy loss")
    max_grad_norm: float = traced(1.0, "global-norm gradient clipping")
    weight_decay: float = traced(0.0, "AdamW decoupled weight decay")
    missing_eos_penalty: float = traced(
        0.0, "subtracted from the score of a completion with no EOS within max_new_tokens"
    )

    def __post_init__(self):
        # a dict of options is stored as sorted pairs, so the Config hashes (static fields)
        object.__setattr__(self, "task_options", freeze_options(self.task_options))

    def validate(self, counts: tuple[str, ...] = (), positives: tuple[str, ...] = ()):
        """One-line ValueError naming a field unless the shared fields and ``counts``
        (more integers > 0) and ``positives`` (more numbers > 0) hold allowed values."""
        for name in (
            "num_steps", "num_prompts", *counts, "num_epochs", "num_minibatches", "eval_every",
            "eval_prompts", "num_train_prompts",
        ):  # fmt: skip
            require(self, name, positive_int)
        require(self, "aggregation", one_of(*AGGREGATIONS))
        require(self, "kl_estimator", one_of("k1", "k2", "k3"))
        check_lora_fields(self)
        require(self, "clip_eps_low", in_range(0, 1, high_open=True))
        for name in ("learning_rate", "max_grad_norm", "temperature", *positives):
            require(self, name, positive)
        for name in (
            "kl_coef", "clip_eps_high", "entropy_coef", "weight_decay", "missing_eos_penalty"
        ):  # fmt: skip
            require(self, name, non_negative)
        if min(self.max_new_tokens, self.max_len_norm, self.warmup_steps) < 0:
            raise ValueError(
                f"{type(self).__name__}.max_new_tokens ({self.max_new_tokens}), max_len_norm "
                f"({self.max_len_norm}) and warmup_steps ({self.warmup_steps}) must be >= 0"
            )
        rows, rows_name = self.rollout_rows()
        if rows % self.num_minibatches:
            raise ValueError(
                f"{rows_name} ({rows}) must be divisible by num_minibatches "
                f"({self.num_minibatches})"
            )

    def rollout_rows(self) -> tuple[int, str]:
        """Completions per step (the rows the minibatches split) and how to name them."""
        return self.num_prompts, "num_prompts"


def check_task_fits(task: Task, model: ModelConfig, owner: str, *arrays) -> None:
    """One-line ValueError unless prompt + completion fit ``model.max_len`` and every token
    id in ``arrays`` (the task's token arrays) is below ``model.vocab_size``."""
    need = task.prompt_len + task.completion_len
    if model.max_len < need:
        raise ValueError(
            f"{owner}: model max_len ({model.max_len}) must be >= prompt + completion length "
            f"of task {task.name!r} ({need})"
        )
    top = max((int(np.max(a)) for a in arrays if np.size(a)), default=-1)
    if top >= model.vocab_size:
        raise ValueError(
            f"{owner}: task {task.name!r} has token id {top}, outside the model's vocabulary "
            f"(vocab_size {model.vocab_size}); use the model's own tokenizer"
        )


def check_lora_fields(config) -> None:
    """One-line ValueError unless ``config.lora_rank`` is an int >= 0 and ``lora_alpha`` > 0."""
    name, rank, alpha = type(config).__name__, config.lora_rank, config.lora_alpha
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"{name}.lora_rank must be an integer >= 0 (0 = no LoRA), got {rank!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"{name}.lora_alpha must be a number > 0, got {alpha!r}")


def freeze_options(options) -> tuple:
    """A dict or iterable of (name, value) pairs as a sorted tuple of pairs (hashable)."""
    items = options.items() if isinstance(options, dict) else options
    return tuple(sorted((str(k), v) for k, v in items))


def config_to_dict(config) -> dict:
    """A JSON-ready dict of a (nested) trainer config, for ``config.json``.

    ``task_options`` pairs come back as a dict, which the config accepts again.
    """
    out = dataclasses.asdict(config)
    if "task_options" in out:
        out["task_options"] = dict(out["task_options"])
    return out
