"""The four roles of LLM RL (actor, critic, reference, reward) as pure functions over a batch.

GRPO and RLHF-PPO are written with the same stages (the pseudo-code of the study
note, each line a pure function)::

    batch = actor.generate_sequences(prompts, key)     # sample completions, keep their log-probs
    batch = critic.compute_values(batch)               # per-token values (RLHF only)
    batch = reference.compute_log_prob(batch)          # frozen SFT model
    batch = reward.compute_reward(batch)               # reward model or task score (+ KL penalty)
    batch = compute_advantages(batch, ...)             # token GAE, or group advantages (GRPO)
    critic, critic_metrics = critic.update_critic(batch, key)
    actor, actor_metrics = actor.update_actor(batch, key)

A role is a ``flax.struct.dataclass``: its parameters, optimiser state and the
trainer's Config (whose numeric fields are traced leaves) are pytree leaves, and
model sizes, sampling settings and the task are static. A method returns a new
batch, or a new role and a dict of metrics; nothing is mutated, so every stage
can be jitted alone (to time it) or inlined into one compiled step.

Shapes: ``N`` completions per step (prompts × samples per prompt), ``P`` prompt
columns, ``C`` completion columns. Layout as in :mod:`jaxrl.llm.transformer`.
The trainer Config (:class:`jaxrl.llm.grpo.GRPOConfig`,
:class:`jaxrl.llm.rlhf.RLHFConfig`, both extending
:class:`jaxrl.llm.stage_config.RLConfig`) provides the fields the roles read:
``learning_rate``, ``max_grad_norm``, ``weight_decay``, ``warmup_steps``, ``clip_eps_low``,
``clip_eps_high``, ``kl_coef``, ``kl_estimator``, ``aggregation``, ``max_len_norm``,
``entropy_coef``, ``temperature``, ``num_epochs``, ``num_minibatches``,
``missing_eos_penalty``, ``importance_sampling`` (GRPO; "token" when absent) and,
for a critic, ``critic_learning_rate``, ``value_clip_eps`` and ``vf_coef``. The losses
and the optimiser live in :mod:`jaxrl.llm.rl_update`.

The actor samples with the task's ``generation_config`` (its stop and pad tokens: a
pretrained tokenizer's EOS ids), so ``finished`` and the missing-EOS penalty follow
the task's EOS. A task whose ``score`` is a ``jax.pure_callback`` to a host reward
stays inside the one compiled step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from jaxrl.core.policy import masked_mean
from jaxrl.core.sequence import (
    KLControllerState,
    kl_controller_init,
    kl_controller_update,
    kl_estimate,
    kl_penalized_rewards,
)
from jaxrl.llm.generate import GenerationConfig, generate, score_completions
from jaxrl.llm.lora import reference_config
from jaxrl.llm.reward_model import reward_scores
from jaxrl.llm.rl_update import (
    actor_loss,
    loss_mask,
    make_rl_optimizer,
    minibatch_updates,
    value_loss,
)
from jaxrl.llm.tasks import Prompts, Task
from jaxrl.llm.training import TrainState
from jaxrl.llm.transformer import ModelConfig

__all__ = [
    "RolloutBatch",
    "Actor",
    "Critic",
    "Reference",
    "make_reference",
    "Reward",
    "make_reward_role",
    "as_traced",
    "make_rl_optimizer",
    "minibatch_updates",
    "actor_loss",
    "value_loss",
    "loss_mask",
    "rollout_metrics",
]


class RolloutBatch(NamedTuple):
    """Completions and everything the stages add to them; a stage fills the fields it owns."""

    prompts: Prompts  # tokens/mask [N, P], reference answers [N, A]
    tokens: jax.Array  # [N, C] sampled completion, PAD after EOS
    mask: jax.Array  # [N, C] 1 on real completion tokens (EOS included)
    log_probs: jax.Array  # [N, C] log π_old of the sampled tokens (generation)
    finished: jax.Array  # [N] bool, the completion emitted EOS
    values: jax.Array | None = None  # [N, C] V(x, y_<t) of the critic
    ref_log_probs: jax.Array | None = None  # [N, C] log π_ref
    scores: jax.Array | None = None  # [N] sequence reward used for learning
    true_scores: jax.Array | None = None  # [N] the task's own score (a metric)
    rewards: jax.Array | None = None  # [N, C] per-token rewards (score + KL penalty)
    advantages: jax.Array | None = None  # [N, C], 0 off the mask
    returns: jax.Array | None = None  # [N, C] value targets
    keep: jax.Array | None = None  # [N] 1 where the row enters the policy loss (dynamic sampling)


_LOOP_FIELDS = (
    "task",
    "task_options",
    "num_steps",
    "eval_every",
    "eval_prompts",
    "num_train_prompts",
)


def as_traced(config):
    """The Config the roles carry: numeric fields as float32 arrays, loop-only fields reset.

    A jitted step returns the Config inside the roles as arrays; starting from
    arrays too keeps the first and later calls on one compiled program (a Python
    float and a float32 array are different jit signatures). Static fields that
    only the training loop reads (number of steps, evaluation sizes, task name)
    are reset to their defaults, so changing them does not recompile the step.
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    reset = {n: fields[n].default for n in _LOOP_FIELDS if n in fields}
    config = dataclasses.replace(config, **reset)
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), config)


def _update_epochs(role, batch: RolloutBatch, key, loss, learning_rate):
    """``role``'s ``num_epochs`` × ``num_minibatches`` optimiser steps on
    ``loss(params, minibatch, role)``; returns ``(state, metrics)``."""
    cfg = role.config
    optimizer = make_rl_optimizer(cfg, learning_rate)
    return minibatch_updates(
        role.state,
        batch,
        key,
        lambda params, minibatch: loss(params, minibatch, role),
        optimizer,
        cfg.num_epochs,
        cfg.num_minibatches,
    )


@flax.struct.dataclass
class Actor:
    """The policy being trained: samples completions and takes clipped policy-gradient steps."""

    state: TrainState
    config: Any  # the trainer Config (traced numeric leaves)
    model: ModelConfig = flax.struct.field(pytree_node=False)
    generation: GenerationConfig = flax.struct.field(pytree_node=False)
    group_size: int = flax.struct.field(pytree_node=False, default=1)
    kl_in_loss: bool = flax.struct.field(pytree_node=False, default=False)
    shared_value_head: bool = flax.struct.field(pytree_node=False, default=False)

    def generate_sequences(self, prompts: Prompts, key) -> RolloutBatch:
        """Samples ``group_size`` completions per prompt; prompts ``[B, P]`` → batch of N = B·G."""
        if self.group_size > 1:
            prompts = jax.tree_util.tree_map(
                lambda x: jnp.repeat(x, self.group_size, axis=0), prompts
            )
        gen = generate(
            self.state.params, self.model, self.generation, prompts.tokens, prompts.mask, key
        )
        return RolloutBatch(prompts, gen.tokens, gen.mask, gen.log_probs, gen.finished)

    def compute_log_prob(self, batch: RolloutBatch) -> RolloutBatch:
        """Replaces ``log_probs`` ``[N, C]`` by log π_old from the loss's own forward pass.

        Generation's log-probs come from the cached decode; in low precision they can
        differ from the full forward the loss computes, so ρ ≠ 1 on-policy. GSPO's
        clip range (3e-4) is narrower than that noise; recomputing removes it.
        """
        p = batch.prompts
        out = score_completions(
            self.state.params, self.model, p.tokens, p.mask, batch.tokens, batch.mask,
            self.config.temperature,
        )  # fmt: skip
        return batch._replace(log_probs=jax.lax.stop_gradient(out.log_probs))

    def update_actor(self, batch: RolloutBatch, key) -> tuple[Actor, dict]:
        """``num_epochs`` × ``num_minibatches`` steps on :func:`actor_loss`, old log-probs kept."""
        state, metrics = _update_epochs(self, batch, key, actor_loss, self.config.learning_rate)
        return self.replace(state=state), metrics


def _critic_loss(params, batch: RolloutBatch, critic: Critic):
    p = batch.prompts
    out = score_completions(params, critic.model, p.tokens, p.mask, batch.tokens, batch.mask)
    return value_loss(out.values, batch, critic.config)


@flax.struct.dataclass
class Critic:
    """Per-token values V(x, y_<t): a separate model, or the actor's own value head.

    With ``state`` None the critic is the actor's value head (``params`` are the
    actor's); ``update_critic`` then does nothing and the actor's loss trains it.
    """

    params: Any
    state: TrainState | None
    config: Any
    model: ModelConfig = flax.struct.field(pytree_node=False)

    def compute_values(self, batch: RolloutBatch) -> RolloutBatch:
        """Fills ``values`` ``[N, C]``: V(x, y_<t) at the column before each token."""
        p = batch.prompts
        out = score_completions(self.params, self.model, p.tokens, p.mask, batch.tokens, batch.mask)
        return batch._replace(values=out.values)

    def update_critic(self, batch: RolloutBatch, key) -> tuple[Critic, dict]:
        """Clipped value regression on the returns (a no-op for a shared value head)."""
        if self.state is None:
            return self, {}
        lr = self.config.critic_learning_rate
        state, metrics = _update_epochs(self, batch, key, _critic_loss, lr)
        metrics = {f"critic_{k}" if k == "grad_norm" else k: v for k, v in metrics.items()}
        return self.replace(params=state.params, state=state), metrics


@flax.struct.dataclass
class Reference:
    """The frozen reference policy (the SFT model).

    With ``params`` None (a LoRA policy, see :func:`make_reference`) the reference is
    the actor's own params with the adapters switched off: the base weights, which
    LoRA training leaves unchanged, with no second copy of them.
    """

    params: Any
    model: ModelConfig = flax.struct.field(pytree_node=False)
    temperature: float = flax.struct.field(pytree_node=False, default=1.0)

    def compute_log_prob(self, batch: RolloutBatch, policy_params=None) -> RolloutBatch:
        """Fills ``ref_log_probs`` ``[N, C]``: log π_ref of the sampled tokens (0 off the mask).

        ``policy_params`` (the actor's) are read when this reference holds no params.
        """
        params = self.params if self.params is not None else policy_params
        if params is None:
            raise ValueError("Reference without params needs the policy's params (LoRA)")
        p = batch.prompts
        out = score_completions(
            params, self.model, p.tokens, p.mask, batch.tokens, batch.mask, self.temperature
        )
        return batch._replace(ref_log_probs=out.log_probs)


def make_reference(policy, temperature: float = 1.0) -> Reference:
    """The reference of a ``LoadedModel`` policy: its own params, or (LoRA) the base via the actor.

    A LoRA policy (``model_config.lora_rank > 0``) gives ``Reference(None, config with
    adapters off)``: ``compute_log_prob(batch, actor_params)`` then scores with the
    actor's frozen base weights. Any other policy keeps its params as the reference.
    """
    config = policy.model_config
    if config.lora_rank > 0:
        return Reference(None, reference_config(config), temperature)
    return Reference(policy.params, config, temperature)


@flax.struct.dataclass
class Reward:
    """Sequence rewards from a reward model (``params`` given) or the task's score.

    ``kl`` holds β of the per-token KL penalty in the reward (RLHF); with
    ``kl_in_reward`` False the per-token rewards carry the score only (GRPO).
    """

    params: Any  # reward-model parameters, or None to use the task's score
    kl: KLControllerState
    config: Any
    task: Task = flax.struct.field(pytree_node=False)
    model: ModelConfig | None = flax.struct.field(pytree_node=False, default=None)
    kl_in_reward: bool = flax.struct.field(pytree_node=False, default=True)
    adaptive_kl: bool = flax.struct.field(pytree_node=False, default=False)

    def compute_reward(self, batch: RolloutBatch) -> RolloutBatch:
        """Scores (− a penalty for a missing EOS), the task's true score and per-token rewards.

        ``true_scores`` are NaN when the task cannot score (``task.has_score`` False: a
        preference dataset without a reward; then a reward model must give ``scores``).
        """
        p = batch.prompts
        if getattr(self.task, "has_score", True):
            true = self.task.score(p, batch.tokens, batch.mask)
        else:  # a preference dataset without a reward: the reward model alone scores
            true = jnp.full(batch.tokens.shape[:1], jnp.nan, jnp.float32)
        if self.params is None:
            scores = true
        else:
            scores = reward_scores(
                self.params, self.model, p.tokens, p.mask, batch.tokens, batch.mask
            )
        scores = scores - self.config.missing_eos_penalty * (1.0 - batch.finished)
        beta = self.kl.kl_coef if self.kl_in_reward else 0.0
        rewards = kl_penalized_rewards(
            scores,
            batch.log_probs,
            batch.ref_log_probs,
            batch.mask,
            beta,
            self.config.kl_estimator,
        )
        return batch._replace(scores=scores, true_scores=true, rewards=rewards)

    def update_kl_coef(self, batch: RolloutBatch) -> Reward:
        """Ziegler et al.'s adaptive β from this batch's sequence KL (unchanged when fixed)."""
        if not self.adaptive_kl:
            return self
        kl = jnp.mean(jnp.sum((batch.log_probs - batch.ref_log_probs) * batch.mask, axis=-1))
        cfg = self.config
        n = batch.tokens.shape[0]
        return self.replace(kl=kl_controller_update(self.kl, kl, n, cfg.target_kl, cfg.kl_horizon))


def make_reward_role(
    reward_model, kl_coef, config, task: Task, kl_in_reward: bool, adaptive_kl: bool = False
) -> Reward:
    """The ``Reward`` of a run: a ``LoadedModel`` reward model, or (None) the task's score.

    Args:
      reward_model: a ``LoadedModel`` with a reward head, or None.
      kl_coef: the starting β of the per-token KL penalty (used with ``kl_in_reward``).
      config: the trainer Config (``missing_eos_penalty``, KL settings).
      task: the task (true score, EOS ids).
      kl_in_reward: put ``−β·(log π_old − log π_ref)`` in the per-token rewards (RLHF).
      adaptive_kl: adapt β towards ``config.target_kl``.
    """
    params = model = None
    if reward_model is not None:
        params, model = reward_model.params, reward_model.model_config
    kl = kl_controller_init(kl_coef)
    return Reward(params, kl, config, task, model, kl_in_reward, adaptive_kl)


def rollout_metrics(batch: RolloutBatch) -> dict:
    """Scalars of a filled batch: reward mean/std, true score, sequence KL, length, EOS rate."""
    mask = batch.mask.astype(jnp.float32)
    seq_kl = jnp.sum((batch.log_probs - batch.ref_log_probs) * mask, axis=-1)
    k3 = kl_estimate(batch.log_probs, batch.ref_log_probs, "k3")
    return {
        "reward_mean": jnp.mean(batch.scores),
        "reward_std": jnp.std(batch.scores),
        "true_score": jnp.mean(batch.true_scores),
        "exact_share": jnp.mean(batch.true_scores >= 1.0),
        "kl_ref": jnp.mean(seq_kl),
        "kl_ref_token_k3": masked_mean(k3, mask),
        "completion_length": jnp.mean(jnp.sum(mask, axis=-1)),
        "finished_share": jnp.mean(batch.finished),
    }
