"""Group Relative Policy Optimization (GRPO), with Dr. GRPO and DAPO-style options.

For each prompt x, sample G completions y₁…y_G from π_old, score them (the task's
verifier or a reward model), and give every token of yᵢ the group advantage

    Âᵢ = (rᵢ − mean(r)) / (std(r) + ε)        (std with Bessel's correction)

then take ``num_epochs`` passes of the clipped token-level objective, old log-probs
kept fixed, with a KL term to the frozen reference:

    ℓᵢₜ = −min(ρᵢₜ·Âᵢ, clip(ρᵢₜ, 1 − ε_low, 1 + ε_high)·Âᵢ) + β·k(π_θ ‖ π_ref)ᵢₜ,
    ρᵢₜ = π_θ(yᵢₜ)/π_old(yᵢₜ),     L = Σᵢₜ wᵢₜ·ℓᵢₜ

with the token weights w of the aggregation mode. No critic: the group is the
baseline. See Shao et al., DeepSeekMath: https://arxiv.org/abs/2402.03300.
Options: ``advantage="dr_grpo"`` with ``aggregation="seq_mean_token_sum_norm"`` is
Dr. GRPO (Liu et al., https://arxiv.org/abs/2503.20783); ``clip_eps_high >
clip_eps_low`` with ``aggregation="token_mean"`` and ``kl_coef=0`` is DAPO's
clip-higher and token-level loss (Yu et al., https://arxiv.org/abs/2503.14476);
``advantage="rloo"`` is RLOO's leave-one-out baseline. ``importance_sampling=
"sequence"`` is GSPO: one length-normalised ratio per sequence,
sᵢ = exp((1/|yᵢ|)·Σₜ log π_θ(yᵢₜ)/π_old(yᵢₜ)), clipped per sequence in place of ρᵢₜ
(Zheng et al., https://arxiv.org/abs/2507.18071). ``filter_zero_std_groups`` is
DAPO's dynamic sampling as a mask: groups whose rewards are all equal leave the loss
(the "dapo" preset sets it). ``PRESETS`` holds these.

Pretrained models: ``policy`` may be a Hugging Face model directory, and
``lora_rank > 0`` trains LoRA adapters on it (the reference is then the base
weights, with no second copy). A dataset task (:mod:`jaxrl.llm.data`) supplies its
tokenizer's stop and pad tokens (``task.generation_config``) and scores on the host
through ``jax.pure_callback``, inside the one compiled step.

The step (one compiled program; :func:`grpo_step_timed` runs the same stages, each
jitted alone, and times them)::

    batch = actor.generate_sequences(prompts, key)   # G completions per prompt
    batch = actor.compute_log_prob(batch)            # only with recompute_old_log_probs
    batch = reference.compute_log_prob(batch)
    batch = reward.compute_reward(batch)
    batch = compute_group_advantages(batch, actor)
    actor, metrics = actor.update_actor(batch, key)

Shapes: ``B`` prompts per step, ``G`` samples per prompt, ``N = B·G``, ``C``
completion columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl._config import config, one_of, require, static, traced
from jaxrl.core.sequence import group_advantages, informative_groups
from jaxrl.llm.rl_loop import resolve_model, resolve_task, timed_call
from jaxrl.llm.rl_setup import (
    as_step_output,
    prepare_policy,
    rollout_length,
    run_roles,
    starting_policy,
)
from jaxrl.llm.roles import (
    Actor,
    Reference,
    Reward,
    RolloutBatch,
    as_traced,
    make_reference,
    make_reward_role,
    make_rl_optimizer,
    rollout_metrics,
)
from jaxrl.llm.stage_config import RLConfig
from jaxrl.llm.tasks import Task
from jaxrl.llm.training import TrainResult, TrainState

__all__ = [
    "GRPOConfig",
    "GRPORoles",
    "PRESETS",
    "compute_group_advantages",
    "grpo_step",
    "grpo_step_jit",
    "grpo_preset",
    "grpo_step_timed",
    "make_grpo_roles",
    "train_grpo",
]

PRESETS = {
    "grpo": {},
    "dr_grpo": {"advantage": "dr_grpo", "aggregation": "seq_mean_token_sum_norm"},
    "dapo": {
        "aggregation": "token_mean",
        "clip_eps_high": 0.28,
        "kl_coef": 0.0,
        "filter_zero_std_groups": True,
    },
    "rloo": {"advantage": "rloo", "aggregation": "token_mean"},
    # GSPO's clip range is three orders of magnitude below PPO's: a sequence ratio is a
    # geometric mean of token ratios, close to 1 (Zheng et al. 2025, section 5.1)
    "gspo": {
        "importance_sampling": "sequence",
        "clip_eps_low": 3e-4,
        "clip_eps_high": 4e-4,
        "recompute_old_log_probs": True,
    },
}


@config
class GRPOConfig(RLConfig):
    """GRPO settings: :class:`~jaxrl.llm.stage_config.RLConfig`'s fields (GRPO's defaults)
    and the group's. Static fields fix shapes and program structure; the rest are traced."""

    num_steps: int = static(300, "GRPO steps (one rollout and its updates each)")
    group_size: int = static(8, "completions per prompt, G")
    advantage: str = static("grpo", "group advantage: grpo, dr_grpo or rloo")
    importance_sampling: str = static("token", "ratio: token (GRPO) or sequence (GSPO)")
    filter_zero_std_groups: bool = static(
        False, "drop groups with all-equal rewards from the loss (DAPO dynamic sampling, masked)"
    )
    recompute_old_log_probs: bool = static(
        False, "log π_old from a forward pass, not the sampler (low-precision noise; gspo)"
    )
    advantage_eps: float = traced(1e-6, "ε added to the group's std in the advantage")

    def validate(self):
        super().validate(counts=("group_size",), positives=("advantage_eps",))
        require(self, "advantage", one_of("grpo", "dr_grpo", "rloo"))
        require(self, "importance_sampling", one_of("token", "sequence"))
        if self.group_size < 2 and self.advantage != "dr_grpo":
            raise ValueError(
                f"GRPOConfig.group_size = {self.group_size} is not allowed with advantage "
                f"{self.advantage!r}: use a group of at least 2"
            )

    def rollout_rows(self) -> tuple[int, str]:
        """``B·G`` completions per step."""
        return self.num_prompts * self.group_size, "num_prompts * group_size"


def grpo_preset(name: str, **overrides) -> GRPOConfig:
    """A ``GRPOConfig`` of one of ``PRESETS`` (grpo, dr_grpo, dapo, rloo, gspo) with overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown GRPO preset {name!r}; known: {', '.join(PRESETS)}")
    return GRPOConfig(**{**PRESETS[name], **overrides})


class GRPORoles(NamedTuple):
    """Everything a GRPO step reads and returns (the actor is the only one that changes)."""

    actor: Actor
    reference: Reference
    reward: Reward


def compute_group_advantages(batch: RolloutBatch, actor: Actor) -> RolloutBatch:
    """Group advantages of the scores, broadcast over each completion's real tokens.

    With ``filter_zero_std_groups`` the rows of groups whose rewards are all equal get
    ``keep = 0``: they leave the policy loss and its normalisation (DAPO's dynamic
    sampling). The batch keeps its fixed shape — the groups are masked, not resampled
    to refill the batch as DAPO does — so a step may train on fewer groups than B.

    Args:
      batch: rollout with ``scores`` ``[N]``, rows grouped by prompt (G consecutive rows).
      actor: provides ``group_size`` and the Config's ``advantage``, ``advantage_eps``,
        ``filter_zero_std_groups``.

    Returns:
      The batch with ``advantages`` ``[N, C]`` (0 off the mask) and, when filtering,
      ``keep`` ``[N]``.
    """
    cfg, g = actor.config, actor.group_size
    groups = batch.scores.reshape(-1, g)
    adv = group_advantages(groups, cfg.advantage, cfg.advantage_eps)
    advantages = jnp.where(batch.mask > 0, adv.reshape(-1, 1), 0.0)
    keep = None
    if getattr(cfg, "filter_zero_std_groups", False):
        keep = jnp.repeat(informative_groups(groups), g)
    return batch._replace(advantages=advantages, keep=keep)


def _group_metrics(batch: RolloutBatch, group_size: int) -> dict:
    groups = batch.scores.reshape(-1, group_size)
    kept = 1.0 if batch.keep is None else jnp.mean(batch.keep)
    return {
        "zero_variance_groups": jnp.mean(jnp.ptp(groups, axis=-1) == 0),
        "kept_group_share": jnp.asarray(kept, jnp.float32),
    }


def grpo_step(roles: GRPORoles, prompts, key) -> tuple[GRPORoles, dict]:
    """One GRPO step: sample groups, score them, and update the actor (see the module doc).

    Args:
      roles: actor, reference and reward.
      prompts: ``Prompts`` of ``B`` prompts (each is repeated G times).
      key: PRNG key.

    Returns:
      ``(roles, metrics)`` with scalar metrics.
    """
    actor, reference, reward = roles
    gen_key, update_key = jax.random.split(key)
    batch = actor.generate_sequences(prompts, gen_key)
    if actor.config.recompute_old_log_probs:
        batch = actor.compute_log_prob(batch)
    batch = reference.compute_log_prob(batch, actor.state.params)  # LoRA: base via actor
    batch = reward.compute_reward(batch)
    batch = compute_group_advantages(batch, actor)
    actor, actor_metrics = actor.update_actor(batch, update_key)
    metrics = {
        **rollout_metrics(batch),
        **_group_metrics(batch, actor.group_size),
        **actor_metrics,
    }
    return GRPORoles(actor, reference, reward), metrics


grpo_step_jit = jax.jit(grpo_step)


def grpo_step_timed(roles: GRPORoles, prompts, key) -> tuple[GRPORoles, dict]:
    """:func:`grpo_step` with every stage jitted on its own; adds ``time_<stage>`` metrics."""
    actor, reference, reward = roles
    gen_key, update_key = jax.random.split(key)
    t: dict = {}
    batch = timed_call(t, "generate_sequences", Actor.generate_sequences, actor, prompts, gen_key)
    if actor.config.recompute_old_log_probs:
        batch = timed_call(t, "compute_old_log_prob", Actor.compute_log_prob, actor, batch)
    ref_fn, actor_params = Reference.compute_log_prob, actor.state.params
    batch = timed_call(t, "compute_ref_log_prob", ref_fn, reference, batch, actor_params)
    batch = timed_call(t, "compute_reward", Reward.compute_reward, reward, batch)
    batch = timed_call(t, "compute_advantages", compute_group_advantages, batch, actor)
    actor, actor_metrics = timed_call(
        t, "update_actor", Actor.update_actor, actor, batch, update_key
    )
    metrics = {
        **rollout_metrics(batch),
        **_group_metrics(batch, actor.group_size),
        **actor_metrics,
        **{f"time_{k}": v for k, v in t.items()},
    }
    return GRPORoles(actor, reference, reward), metrics


def make_grpo_roles(
    config: GRPOConfig, policy, task: Task, reward_model=None, key=None
) -> GRPORoles:
    """Actor (from ``policy``), frozen reference and reward (task or model).

    Args:
      config: the settings (``lora_rank > 0`` puts adapters on the policy, see
        :func:`jaxrl.llm.roles.prepare_policy`).
      policy: a ``LoadedModel`` (params and ``ModelConfig``) to start from.
      task: the task (scores completions, gives prompt and completion lengths and the
        stop and pad tokens of generation).
      reward_model: a ``LoadedModel`` with a reward head, or None to use the task's score.
      key: PRNG key of the LoRA adapters (default ``PRNGKey(0)``).
    """
    completion_len = rollout_length(
        config, policy, task, reward_model, "give a reward model or a reward spec"
    )
    policy = prepare_policy(policy, config, jax.random.PRNGKey(0) if key is None else key)
    config = as_traced(config)
    optimizer = make_rl_optimizer(config, config.learning_rate)
    state = TrainState(policy.params, optimizer.init(policy.params), jnp.asarray(0, jnp.int32))
    generation = task.generation_config(completion_len, temperature=config.temperature)
    actor = Actor(
        state, config, policy.model_config, generation, config.group_size, kl_in_loss=True
    )
    reference = make_reference(policy, config.temperature)  # LoRA: the adapters off
    reward = make_reward_role(reward_model, 0.0, config, task, kl_in_reward=False)
    return as_step_output(GRPORoles(actor, reference, reward))


def train_grpo(
    config: GRPOConfig,
    key,
    init_from=None,
    reward_model=None,
    task: Task | None = None,
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
    time_stages: bool = False,
    *,
    policy=None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> TrainResult:
    """Trains a policy with GRPO (or GSPO, DAPO, Dr. GRPO, RLOO), starting from an SFT model.

    Args:
      config: the settings.
      key: PRNG key.
      init_from: the starting model (same as ``policy``; kept for older callers).
      reward_model: a reward model in the same forms, or None for the task's score.
      task: any ``Task`` (a ``DatasetTask`` too); overrides the task named by the config
        or recorded with the model.
      progress_callback: ``(step, numbers)`` after every ``eval_every`` steps.
      time_stages: run the stages one by one and record ``time_<stage>`` per step.
      policy: the starting model: a Hugging Face model directory, a directory written by
        ``save_model`` (or a run directory holding one), a ``TrainResult``, or a
        ``(params, ModelConfig)`` pair; None starts from a fresh tiny transformer.
      checkpoint_dir: write a checkpoint there after every evaluation.
      resume: continue from the checkpoint in ``checkpoint_dir`` (same prompts and keys
        as an uninterrupted run).

    Returns:
      ``TrainResult``: per-step ``metrics`` (reward_mean/std, true_score, kl_ref,
      entropy, clip fractions, approx_kl, completion_length, zero_variance_groups,
      kept_group_share, ...), held-out ``evals`` (score, accuracy for verifiable tasks,
      kl_ref, length, rm_score with a reward model), ``summary`` with the first
      (``before_*``) and last evaluation; the params and ``model_config`` of the actor
      (with LoRA: the adapters unmerged, see ``jaxrl.llm.lora.merge_lora``).
    """
    init_key, train_key, eval_key = jax.random.split(key, 3)
    start = starting_policy(policy, init_from, init_key)
    task = resolve_task(config, task, start.task, "addition")
    rm = None if reward_model is None else resolve_model(reward_model)
    roles = make_grpo_roles(config, start, task, rm, key=jax.random.fold_in(init_key, 1))
    step = grpo_step_timed if time_stages else grpo_step_jit
    return run_roles(
        step, roles, task, config, train_key, eval_key, rm, progress_callback, checkpoint_dir,
        resume,
    )  # fmt: skip
