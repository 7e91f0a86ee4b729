"""What the configs of the supervised LLM stages (SFT, reward model, DPO) check and share.

:class:`StageConfig` is their base: the task they name and the field checks they have in
common, each a one-line ValueError that names the field, its value and what is allowed.
:func:`check_lora_fields` (also used by GRPO and RLHF), :func:`check_task_fits`,
:func:`freeze_options` and :func:`config_to_dict` serve every LLM trainer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxrl._config import non_negative, positive, positive_int, require
from jaxrl.llm.tasks import Task, make_task
from jaxrl.llm.transformer import ModelConfig

__all__ = [
    "StageConfig",
    "check_task_fits",
    "check_lora_fields",
    "freeze_options",
    "config_to_dict",
]


class StageConfig:
    """What the SFT, reward-model and DPO Configs share: their task and common checks.

    A base of frozen dataclasses with the fields ``task``, ``task_options``, ``model``,
    ``num_steps``, ``eval_every``, ``learning_rate``, ``max_grad_norm``, ``lora_rank``,
    ``lora_alpha`` (and those named in :meth:`check_stage`).
    """

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
