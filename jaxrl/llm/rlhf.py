"""RLHF with PPO: actor, critic, frozen reference and reward model, one compiled step.

The step reads like the pseudo-code of the study note, each line a pure function
over a :class:`~jaxrl.llm.roles.RolloutBatch`::

    batch = actor.generate_sequences(prompts, key)     # sample completions, keep their log-probs
    batch = critic.compute_values(batch)               # per-token values
    batch = reference.compute_log_prob(batch)          # frozen SFT model
    batch = reward.compute_reward(batch)               # reward model + per-token KL penalty
    batch = compute_advantages(batch, actor.config)    # token-level GAE over the completion mask
    critic, critic_metrics = critic.update_critic(batch, key)
    actor, actor_metrics = actor.update_actor(batch, key)

Per-token rewards are ``rₜ = −β·(log π_old(yₜ) − log π_ref(yₜ))`` plus the reward
model's score at the last real token; advantages are GAE over the real tokens (γ,
λ), optionally whitened over the batch; the actor takes ``num_epochs`` passes of
PPO's clipped objective and the critic of PPO's clipped value loss. The critic is a
separate transformer (``critic_init``: from the reward model, as in InstructGPT, or
from the policy) or a value head on the actor (``critic="value_head"``, trained
through the actor's loss with weight ``vf_coef``). With ``lora_rank > 0`` the actor
(and a separate critic) train LoRA adapters (and the value head) only, and the
reference is the policy's frozen base weights. β is fixed, or adapted towards
``target_kl`` (Ziegler et al. 2019). A completion that has not emitted one of the
task's EOS tokens within ``max_new_tokens`` loses ``missing_eos_penalty`` from its
score: the reward model only saw finished completions, and without the penalty the
first thing PPO learns here is never to stop (the reward model scores unfinished
strings far above any finished one).

See Ziegler et al., Fine-Tuning Language Models from Human Preferences:
https://arxiv.org/abs/1909.08593; Ouyang et al., Training language models to
follow instructions with human feedback: https://arxiv.org/abs/2203.02155; Zheng
et al., Secrets of RLHF in Large Language Models Part I: PPO:
https://arxiv.org/abs/2307.04964

Shapes: ``N`` prompts per step (one completion each), ``C`` completion columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl._config import (
    config,
    non_negative,
    one_of,
    probability,
    replace_default,
    require,
    static,
    traced,
)
from jaxrl.core.sequence import masked_whiten, token_gae
from jaxrl.llm.rl_loop import resolve_model, resolve_task, timed_call
from jaxrl.llm.rl_setup import (
    as_step_output,
    prepare_policy,
    rollout_length,
    run_roles,
    starting_policy,
    with_new_heads,
)
from jaxrl.llm.roles import (
    Actor,
    Critic,
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
    "RLHFConfig",
    "RLHFRoles",
    "STAGES",
    "compute_advantages",
    "make_rlhf_roles",
    "rlhf_step",
    "rlhf_step_jit",
    "rlhf_step_timed",
    "train_rlhf",
]

STAGES = (
    "generate_sequences",
    "compute_values",
    "compute_ref_log_prob",
    "compute_reward",
    "compute_advantages",
    "update_critic",
    "update_actor",
)


@config
class RLHFConfig(RLConfig):
    """RLHF-PPO settings: :class:`~jaxrl.llm.stage_config.RLConfig`'s fields (some with
    PPO's defaults), the critic's and GAE's. Static fields fix shapes and program
    structure; the rest are traced."""

    task: str = static(
        "", "task name; '' = the task recorded with the --from model, else preference"
    )
    num_steps: int = static(100, "PPO steps (one rollout and its updates each)")
    num_prompts: int = static(64, "prompts (= completions) per step")
    num_epochs: int = static(4, "PPO epochs over each rollout")
    num_minibatches: int = static(4, "minibatches per epoch")
    warmup_steps: int = replace_default(RLConfig, "warmup_steps", 0)
    aggregation: str = replace_default(RLConfig, "aggregation", "token_mean")
    kl_estimator: str = static("k1", "estimator of the per-token KL penalty: k1, k2 or k3")
    lora_rank: int = static(0, "LoRA rank on the policy (and critic); 0 = full fine-tuning")
    critic: str = static("separate", "separate (own transformer) or value_head (on the actor)")
    critic_init: str = static(
        "reward_model", "a separate critic's start: reward_model (if given, else policy) or policy"
    )
    whiten_advantages: bool = static(True, "normalise advantages over the batch's tokens")
    adaptive_kl: bool = static(False, "adapt β towards target_kl (Ziegler et al.)")
    learning_rate: float = replace_default(RLConfig, "learning_rate", 1e-4)
    kl_coef: float = traced(0.05, "β, weight of the per-token KL penalty in the reward")
    missing_eos_penalty: float = replace_default(RLConfig, "missing_eos_penalty", 2.0)
    critic_learning_rate: float = traced(3e-4, "peak AdamW learning rate of a separate critic")
    target_kl: float = traced(1.0, "the KL per completion an adaptive β steers towards")
    kl_horizon: float = traced(10000.0, "horizon of the adaptive-β controller, in samples")
    gamma: float = traced(1.0, "discount γ of the token-level GAE")
    gae_lambda: float = traced(0.95, "λ of the token-level GAE")
    value_clip_eps: float = traced(0.2, "clip range of PPO's value update")
    vf_coef: float = traced(0.1, "weight of a value head's loss in the actor's loss")

    def validate(self):
        positives = ("critic_learning_rate", "target_kl", "kl_horizon", "value_clip_eps")
        super().validate(positives=positives)
        require(self, "critic", one_of("separate", "value_head"))
        require(self, "critic_init", one_of("reward_model", "policy"))
        for name in ("gamma", "gae_lambda"):
            require(self, name, probability)
        require(self, "vf_coef", non_negative)


class RLHFRoles(NamedTuple):
    """Everything an RLHF step reads and returns."""

    actor: Actor
    critic: Critic
    reference: Reference
    reward: Reward


def compute_advantages(batch: RolloutBatch, cfg) -> RolloutBatch:
    """Token-level GAE over the completion mask, optionally whitened over the batch.

        Aₜ = δₜ + γλ·Aₜ₊₁,  δₜ = rₜ + γ·V(t+1) − V(t),   returnsₜ = Aₜ + V(t)

    Args:
      batch: rollout with per-token ``rewards`` and ``values``, ``[N, C]``.
      cfg: provides ``gamma``, ``gae_lambda`` and ``whiten_advantages``.

    Returns:
      The batch with ``advantages`` and ``returns``, ``[N, C]`` (0 off the mask).
    """
    adv, returns = token_gae(batch.rewards, batch.values, batch.mask, cfg.gamma, cfg.gae_lambda)
    if cfg.whiten_advantages:
        adv = masked_whiten(adv, batch.mask)
    return batch._replace(advantages=adv, returns=returns)


def _share_value_head(critic: Critic, actor: Actor) -> Critic:
    """A value-head critic reads the actor's (just updated) parameters."""
    if critic.state is None:
        return critic.replace(params=actor.state.params)
    return critic


def _step_metrics(batch, reward, critic_metrics, actor_metrics, times=None) -> dict:
    metrics = {
        **rollout_metrics(batch),
        "value_mean": jnp.sum(batch.values * batch.mask) / jnp.maximum(jnp.sum(batch.mask), 1),
        "kl_coef": reward.kl.kl_coef,
        **critic_metrics,
        **actor_metrics,
    }
    if times is not None:
        metrics.update({f"time_{k}": v for k, v in times.items()})
    return metrics


def rlhf_step(roles: RLHFRoles, prompts, key) -> tuple[RLHFRoles, dict]:
    """One RLHF-PPO step (see the module docstring).

    Args:
      roles: actor, critic, reference and reward.
      prompts: ``Prompts`` of ``N`` prompts.
      key: PRNG key.

    Returns:
      ``(roles, metrics)``; ``kl_coef`` in the metrics is the β this step used.
    """
    actor, critic, reference, reward = roles
    gen_key, critic_key, actor_key = jax.random.split(key, 3)
    batch = actor.generate_sequences(prompts, gen_key)
    batch = critic.compute_values(batch)
    batch = reference.compute_log_prob(batch, actor.state.params)  # LoRA: base via actor
    batch = reward.compute_reward(batch)
    batch = compute_advantages(batch, actor.config)
    critic, critic_metrics = critic.update_critic(batch, critic_key)
    actor, actor_metrics = actor.update_actor(batch, actor_key)
    metrics = _step_metrics(batch, reward, critic_metrics, actor_metrics)
    reward = reward.update_kl_coef(batch)
    critic = _share_value_head(critic, actor)
    return RLHFRoles(actor, critic, reference, reward), metrics


rlhf_step_jit = jax.jit(rlhf_step)


def rlhf_step_timed(roles: RLHFRoles, prompts, key) -> tuple[RLHFRoles, dict]:
    """:func:`rlhf_step` with each of the seven stages jitted alone; adds ``time_<stage>``."""
    actor, critic, reference, reward = roles
    gen_key, critic_key, actor_key = jax.random.split(key, 3)
    t: dict = {}
    batch = timed_call(t, STAGES[0], Actor.generate_sequences, actor, prompts, gen_key)
    batch = timed_call(t, STAGES[1], Critic.compute_values, critic, batch)
    ref_params = actor.state.params  # read by a LoRA reference (the adapters off)
    batch = timed_call(t, STAGES[2], Reference.compute_log_prob, reference, batch, ref_params)
    batch = timed_call(t, STAGES[3], Reward.compute_reward, reward, batch)
    batch = timed_call(t, STAGES[4], compute_advantages, batch, actor.config)
    critic, critic_metrics = timed_call(
        t, STAGES[5], Critic.update_critic, critic, batch, critic_key
    )
    actor, actor_metrics = timed_call(t, STAGES[6], Actor.update_actor, actor, batch, actor_key)
    metrics = _step_metrics(batch, reward, critic_metrics, actor_metrics, t)
    reward = timed_call({}, "update_kl_coef", Reward.update_kl_coef, reward, batch)
    critic = _share_value_head(critic, actor)
    return RLHFRoles(actor, critic, reference, reward), metrics


def make_rlhf_roles(
    config: RLHFConfig, policy, task: Task, reward_model=None, key=None
) -> RLHFRoles:
    """Actor and reference from the SFT model, critic from the reward model or the policy.

    Args:
      config: the settings (``critic``, ``critic_init``, ``lora_rank``).
      policy: a ``LoadedModel`` (the SFT policy).
      task: the task (prompts, lengths, stop and pad tokens, the true score as a metric).
      reward_model: a ``LoadedModel`` with a reward head, or None to reward with the
        task's own score (then the critic starts from the policy).
      key: PRNG key of the LoRA adapters (default ``PRNGKey(0)``).
    """
    completion_len = rollout_length(config, policy, task, reward_model, "give a reward model")
    key = jax.random.PRNGKey(0) if key is None else key
    policy = prepare_policy(policy, config, key)
    config = as_traced(config)
    opt_actor = make_rl_optimizer(config, config.learning_rate)
    opt_critic = make_rl_optimizer(config, config.critic_learning_rate)
    step0 = jnp.asarray(0, jnp.int32)
    actor_model, actor_params = policy.model_config, policy.params
    if config.critic == "value_head":
        actor_model = actor_model.replace(value_head=True)
        actor_params = with_new_heads(actor_model, policy.params)
    generation = task.generation_config(completion_len, temperature=config.temperature)
    actor = Actor(
        TrainState(actor_params, opt_actor.init(actor_params), step0),
        config,
        actor_model,
        generation,
        shared_value_head=config.critic == "value_head",
    )
    if config.critic == "value_head":
        critic = Critic(actor_params, None, config, actor_model)
    else:
        source = policy  # with LoRA: its own copy of the base and of the fresh adapters
        if config.critic_init == "reward_model" and reward_model is not None:
            source = prepare_policy(reward_model, config, jax.random.fold_in(key, 1))
        critic_model = source.model_config.replace(value_head=True, reward_head=False)
        critic_params = with_new_heads(critic_model, source.params)
        state = TrainState(critic_params, opt_critic.init(critic_params), step0)
        critic = Critic(critic_params, state, config, critic_model)
    # LoRA: the actor's params with the adapters off (a value head on them is read, unused)
    reference = make_reference(policy._replace(model_config=actor_model), config.temperature)
    if reference.params is not None:
        reference = reference.replace(params=policy.params, model=policy.model_config)
    reward = make_reward_role(
        reward_model,
        config.kl_coef,
        config,
        task,
        kl_in_reward=True,
        adaptive_kl=config.adaptive_kl,
    )
    return as_step_output(RLHFRoles(actor, critic, reference, reward))


def train_rlhf(
    config: RLHFConfig,
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
    """Fine-tunes an SFT policy with PPO against a reward model (or the task's score).

    Args:
      config: the settings.
      key: PRNG key.
      init_from: the SFT model (same as ``policy``; kept for older callers).
      reward_model: the reward model in the same forms, or None for the task's score.
      task: any ``Task`` (a ``DatasetTask`` too); overrides the task named by the config
        or recorded with the model.
      progress_callback: ``(step, numbers)`` after every ``eval_every`` steps.
      time_stages: run the seven stages one by one and record ``time_<stage>`` per step.
      policy: the SFT model: a Hugging Face model directory, a directory written by
        ``save_model`` (or a run directory holding one), a ``TrainResult``, or a
        ``(params, ModelConfig)`` pair.
      checkpoint_dir: write a checkpoint there after every evaluation.
      resume: continue from the checkpoint in ``checkpoint_dir``.

    Returns:
      ``TrainResult``: per-step ``metrics`` (reward_mean/std, true_score, kl_ref,
      kl_coef, entropy, clip fractions, approx_kl, value_loss, value_clip_fraction,
      completion_length, ...), held-out ``evals`` (score, rm_score with a reward model,
      kl_ref, length, accuracy for verifiable tasks) and ``summary`` (first as
      ``before_*``, and last); the actor's params and ``model_config`` (LoRA unmerged).
    """
    if policy is None and init_from is None:
        raise ValueError("train_rlhf needs policy= (or init_from=): the SFT model to start from")
    train_key, eval_key = jax.random.split(key)
    start = starting_policy(policy, init_from, None)
    task = resolve_task(config, task, start.task, "preference")
    rm = None if reward_model is None else resolve_model(reward_model)
    roles = make_rlhf_roles(config, start, task, rm, key=jax.random.fold_in(key, 1))
    step = rlhf_step_timed if time_stages else rlhf_step_jit
    return run_roles(
        step, roles, task, config, train_key, eval_key, rm, progress_callback, checkpoint_dir,
        resume,
    )  # fmt: skip
