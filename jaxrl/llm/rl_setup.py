"""Setting up and running an RL trainer (GRPO, RLHF-PPO): the starting policy, LoRA, the run.

:func:`starting_policy` reads the model a run starts from (a Hugging Face directory,
a jaxrl run, a ``TrainResult`` or a ``(params, ModelConfig)`` pair);
:func:`rollout_length` checks that a rollout fits the policy;
:func:`prepare_policy` merges adapters it carries and adds fresh ones for LoRA;
:func:`as_step_output` places the freshly built roles as the compiled step returns
them; :func:`run_roles` runs the step on the task's training prompts through the
one runner (checkpoints, resume), evaluates the actor on held-out prompts and
returns the ``TrainResult``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxrl.llm.lora import add_lora, merge_lora
from jaxrl.llm.rl_loop import evaluate_rl, resolve_model, run_rl
from jaxrl.llm.tasks import Task
from jaxrl.llm.training import TrainResult, default_model_config, one_source
from jaxrl.llm.transformer import ModelConfig, init_params, merge_params

__all__ = [
    "starting_policy",
    "rollout_length",
    "prepare_policy",
    "with_new_heads",
    "as_step_output",
    "run_roles",
]


def as_step_output(roles):
    """``roles`` placed as a jitted step returns them: every array committed to its device(s).

    A loaded checkpoint's params are committed to a device while fresh scalars are
    not; jit keys its cache on that, so without this the second step (whose inputs are
    the first step's committed outputs) compiles the program again. An identity jit
    keeps each array's sharding.
    """
    return _identity(roles)


_identity = jax.jit(lambda tree: tree)


def prepare_policy(policy, config, key):
    """The policy an RL run starts from: earlier adapters merged, new ones added.

    A policy that carries LoRA adapters (a LoRA SFT run) has them merged first
    (``W ← W + (α/r)·A B``), so the reference is the model that run produced. With
    ``config.lora_rank > 0`` fresh adapters are then added (``B = 0``: the policy starts
    equal to its base, which stays frozen and is the reference); with 0 the whole model
    trains.

    Args:
      policy: a ``LoadedModel`` (``params``, ``model_config``, ``task``).
      config: a trainer Config with static ``lora_rank`` and ``lora_alpha``.
      key: PRNG key of the adapters' ``A``.

    Returns:
      The ``LoadedModel`` to train.
    """
    model, params = policy.model_config, policy.params
    if model.lora_rank > 0:
        model, params = merge_lora(model, params)
    rank = getattr(config, "lora_rank", 0)
    if rank > 0:
        if model.model_type == "toy":
            raise ValueError(
                f"{type(config).__name__}.lora_rank = {rank} needs a pretrained model "
                "(model_type llama, qwen2 or qwen3); the policy is jaxrl's toy model"
            )
        model, params = add_lora(model, params, key, rank, config.lora_alpha)
    return policy._replace(params=params, model_config=model)


def starting_policy(policy, init_from, key):
    """The ``LoadedModel`` a trainer starts from: ``policy`` or its alias ``init_from``.

    None of both gives a fresh tiny transformer (the toy tokenizer's vocabulary).
    """
    source = one_source(init_from, policy)
    if source is None:
        model = default_model_config()
        return resolve_model((init_params(model, key), model))
    return resolve_model(source)


def rollout_length(config, policy, task: Task, reward_model, no_score_hint: str) -> int:
    """Completion columns of a rollout: ``config.max_new_tokens``, or the task's length.

    Raises a one-line ValueError unless the policy's ``max_len`` holds prompt +
    completion and something scores the completions (the task, or ``reward_model``;
    ``no_score_hint`` says what to give instead).
    """
    completion_len = config.max_new_tokens or task.completion_len
    need = task.prompt_len + completion_len
    if policy.model_config.max_len < need:
        raise ValueError(
            f"the policy's max_len ({policy.model_config.max_len}) must be >= prompt + completion "
            f"length of task {task.name!r} ({need})"
        )
    if reward_model is None and not getattr(task, "has_score", True):
        raise ValueError(
            f"task {task.name!r} has no score (a preference dataset without a reward): "
            + no_score_hint
        )
    return completion_len


def with_new_heads(model: ModelConfig, source_params) -> dict:
    """Parameters of ``model`` copied from ``source_params``, new heads at zero.

    Heads the source lacks (a value head) start at zero, as ``Transformer`` initialises
    them; the shapes come from ``jax.eval_shape``, so nothing is compiled here.
    """
    shapes = jax.eval_shape(lambda k: init_params(model, k), jax.random.PRNGKey(0))
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    return merge_params(zeros, source_params)


def run_roles(
    step: Callable,
    roles,
    task: Task,
    config,
    train_key,
    eval_key,
    reward_model=None,
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> TrainResult:
    """Runs ``config.num_steps`` calls of ``step(roles, prompts, key)`` and evaluates the actor.

    Training prompts are the first ``num_train_prompts`` of the task's "train" split
    (the runner shuffles them epoch-wise); every ``eval_every`` steps the actor is
    evaluated on ``eval_prompts`` of the "heldout" split (:func:`jaxrl.llm.rl_loop.evaluate_rl`:
    score, accuracy for verifiable tasks, KL to the reference, reward-model score). A LoRA
    reference (no params of its own) is the actor's params with the adapters off.

    Args:
      step: the trainer's step (``grpo_step_jit``, ``rlhf_step_jit`` or a timed one).
      roles: the roles, with ``actor`` and ``reference``.
      task: the task.
      config: the trainer Config (``num_steps``, ``num_prompts``, ``eval_every``, ...).
      train_key: PRNG key of the run (prompt order, sampling, minibatches).
      eval_key: PRNG key of every evaluation (the same each time).
      reward_model: a ``LoadedModel`` with a reward head, or None.
      progress_callback: ``(step, numbers)`` after every evaluation.
      checkpoint_dir, resume: see :func:`jaxrl.llm.runner.run_stage`.

    Returns:
      ``TrainResult`` with the actor's params and ``model_config``, per-step metrics,
      evaluations, and a summary of the last (and, as ``before_*``, the first) evaluation.
    """
    completion_len = roles.actor.generation.max_new_tokens
    prompt_data = jax.tree_util.tree_map(
        jnp.asarray, task.prompts("train", config.num_train_prompts, seed=5)
    )
    heldout = jax.tree_util.tree_map(jnp.asarray, task.prompts("heldout", config.eval_prompts, 2))
    rm_pair = None if reward_model is None else (reward_model.params, reward_model.model_config)

    def evaluate(r):
        params = r.actor.state.params
        ref = params if r.reference.params is None else r.reference.params  # LoRA: the base
        return evaluate_rl(
            params, r.actor.model, ref, r.reference.model, task, heldout, eval_key,
            completion_len, rm_pair,
        )  # fmt: skip

    roles, metrics, evals = run_rl(
        step, roles, prompt_data, train_key, config.num_steps, config.num_prompts,
        config.eval_every, evaluate, progress_callback, checkpoint_dir=checkpoint_dir,
        resume=resume,
    )  # fmt: skip
    summary = {k: float(v[-1]) for k, v in evals.items()}
    summary.update({f"before_{k}": float(v[0]) for k, v in evals.items() if k != "step"})
    return TrainResult(roles.actor.state.params, roles.actor.model, metrics, evals, summary)
