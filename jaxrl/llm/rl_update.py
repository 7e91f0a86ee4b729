"""The update side of LLM RL: the optimiser, minibatch epochs, the actor and value losses.

:mod:`jaxrl.llm.roles` calls these from ``Actor.update_actor`` and
``Critic.update_critic``; they read the rollout (:class:`~jaxrl.llm.roles.RolloutBatch`)
and the trainer Config carried by the role.

Shapes: ``N`` completions, ``C`` completion columns.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxrl.core.minibatch import run_epochs
from jaxrl.core.policy import masked_mean, ppo_clip_loss
from jaxrl.core.sequence import (
    aggregation_weights,
    clip_fractions,
    kl_estimate,
    masked_sum,
    sequence_log_ratio,
)
from jaxrl.core.value import clipped_value_loss
from jaxrl.llm.generate import score_completions
from jaxrl.llm.training import TrainState, gradient_step, trainable_labels

__all__ = [
    "make_rl_optimizer",
    "trainable_labels",
    "minibatch_updates",
    "actor_loss",
    "value_loss",
    "loss_mask",
]


def _clip_by_global_norm(max_norm) -> optax.GradientTransformation:
    """``optax.clip_by_global_norm`` that keeps each gradient's dtype.

    The Config's ``max_grad_norm`` is a float32 array (a traced leaf); optax's version
    multiplies by it and hands ``lax.select`` a float32 and a bfloat16 operand for
    bfloat16 weights. Same numbers as optax in float32.
    """

    def update(updates, state, params=None):
        del params
        g_norm = optax.global_norm(updates)
        keep = g_norm < max_norm

        def clip(t):
            scaled = (t / g_norm.astype(t.dtype)) * jnp.asarray(max_norm, t.dtype)
            return jnp.where(keep, t, scaled)

        return jax.tree_util.tree_map(clip, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_rl_optimizer(cfg, learning_rate) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW with a linear warm-up over ``cfg.warmup_steps`` steps.

        η(n) = learning_rate · min(1, (n + 1) / W),  W = warmup_steps·num_epochs·num_minibatches

    (n counts optimiser updates). The warm-up keeps Adam's first, sign-like updates
    small on the noisy policy gradient. ``learning_rate``, ``cfg.max_grad_norm`` and
    ``cfg.weight_decay`` may be traced. A LoRA model trains its adapters (and heads)
    only, see :func:`trainable_labels`; the base weights get zero updates and no state.
    """
    warmup = max(cfg.warmup_steps * cfg.num_epochs * cfg.num_minibatches, 1)

    def schedule(count):
        return learning_rate * jnp.minimum(1.0, (count + 1.0) / warmup)

    inner = optax.chain(
        _clip_by_global_norm(cfg.max_grad_norm),
        optax.adamw(schedule, b1=0.9, b2=0.99, weight_decay=cfg.weight_decay),
    )
    return optax.multi_transform({"train": inner, "frozen": optax.set_to_zero()}, trainable_labels)


def minibatch_updates(
    state: TrainState, batch, key, loss_fn, optimizer, num_epochs: int, num_minibatches: int
) -> tuple[TrainState, dict]:
    """``num_epochs`` passes over ``batch``, each in ``num_minibatches`` shuffled minibatches.

    Args:
      state: parameters and optimiser state.
      batch: a pytree of ``[N, ...]`` arrays (None fields are skipped).
      key: PRNG key for the shuffles.
      loss_fn: ``loss_fn(params, minibatch) -> (loss, metrics)``.
      optimizer: the optax transformation whose state ``state.opt_state`` is.
      num_epochs, num_minibatches: static ints; N must be divisible by num_minibatches.

    Returns:
      ``(state, metrics)`` with each metric averaged over all minibatch steps.
    """

    def step(s, minibatch):
        return gradient_step(loss_fn, s, optimizer, minibatch)

    return run_epochs(key, state, batch, step, num_epochs, num_minibatches)


def value_loss(values, batch, cfg) -> tuple[jax.Array, dict]:
    """PPO's clipped value loss, a token mean over the completion.

        L_V = mean_t ½·max((V − G)², (V_old + clip(V − V_old, −ε_v, ε_v) − G)²)

    Args:
      values: new values, ``[N, C]``.
      batch: holds ``values`` (old), ``returns`` (G) and ``mask``, ``[N, C]``.
      cfg: provides ``value_clip_eps``.

    Returns:
      ``(loss, {"value_loss", "value_clip_fraction"})``.
    """
    per_token = clipped_value_loss(values, batch.values, batch.returns, cfg.value_clip_eps)
    unclipped = 0.5 * jnp.square(values - batch.returns)
    loss = masked_mean(per_token, batch.mask)
    clipped = masked_mean(jax.lax.stop_gradient(per_token > unclipped), batch.mask)
    return loss, {"value_loss": loss, "value_clip_fraction": clipped}


def loss_mask(batch) -> jax.Array:
    """The tokens that enter the policy loss: ``mask``, times ``keep`` per row when set.

    Returns:
      ``[N, C]``: the completion mask, with the rows of groups dropped by dynamic
      sampling (``batch.keep`` 0) zeroed.
    """
    if batch.keep is None:
        return batch.mask
    return batch.mask * batch.keep[:, None].astype(batch.mask.dtype)


def actor_loss(params, batch, actor) -> tuple[jax.Array, dict]:
    """Clipped policy objective (token or sequence ratio), KL to the reference, entropy bonus.

        token ratio (PPO, GRPO):    ρᵢₜ = π_θ(yᵢₜ)/π_old(yᵢₜ)
        sequence ratio (GSPO):      ρᵢₜ = sᵢ = exp((1/|yᵢ|)·Σₜ log π_θ(yᵢₜ)/π_old(yᵢₜ))
        ℓᵢₜ = −min(ρᵢₜ·Aᵢₜ, clip(ρᵢₜ, 1 − ε_low, 1 + ε_high)·Aᵢₜ) + β·klᵢₜ(π_θ ‖ π_ref) − c_H·Hᵢₜ
        L   = Σᵢₜ wᵢₜ·ℓᵢₜ  (+ c_V·L_V with a shared value head)

    w are the weights of the aggregation mode (``jaxrl.core.aggregation_weights``) over
    :func:`loss_mask` (rows dropped by dynamic sampling get weight 0). With the sequence
    ratio and "seq_mean_token_mean", Σₜ wᵢₜ·ℓᵢₜ = ℓᵢ/N: GSPO's sequence objective. The
    KL term enters only when ``actor.kl_in_loss`` (GRPO; RLHF puts it in the reward).
    See Shao et al. (GRPO): https://arxiv.org/abs/2402.03300, Yu et al. (DAPO):
    https://arxiv.org/abs/2503.14476 and Zheng et al. (GSPO): https://arxiv.org/abs/2507.18071

    Args:
      params: actor parameters.
      batch: a rollout with ``log_probs``, ``ref_log_probs`` and ``advantages`` ``[N, C]``.
      actor: the actor role (model, Config with ``importance_sampling``, flags).

    Returns:
      ``(loss, metrics)``: policy_loss, kl_loss, entropy, approx_kl, ratio_max, clip fractions.
    """
    cfg = actor.config
    p = batch.prompts
    out = score_completions(
        params, actor.model, p.tokens, p.mask, batch.tokens, batch.mask, cfg.temperature
    )
    mask = loss_mask(batch)
    w = aggregation_weights(mask, cfg.aggregation, cfg.max_len_norm or None)
    token_log_ratio = out.log_probs - batch.log_probs
    log_ratio = token_log_ratio
    if getattr(cfg, "importance_sampling", "token") == "sequence":
        seq = sequence_log_ratio(token_log_ratio, batch.mask)
        log_ratio = jnp.where(batch.mask > 0, seq[:, None], 0.0)
    pg, _ = ppo_clip_loss(
        log_ratio,
        batch.advantages,
        clip_eps_low=cfg.clip_eps_low,
        clip_eps_high=cfg.clip_eps_high,
        mask=w,
    )
    pg = pg * jnp.sum(w)  # ppo_clip_loss divides by Σw: undo it, so the loss is Σ w·ℓ
    kl_loss = masked_sum(kl_estimate(out.log_probs, batch.ref_log_probs, cfg.kl_estimator), w)
    entropy = masked_mean(out.entropy, mask)
    loss = pg - cfg.entropy_coef * entropy
    if actor.kl_in_loss:
        loss = loss + cfg.kl_coef * kl_loss
    token_ratio = jnp.exp(jax.lax.stop_gradient(token_log_ratio))
    metrics = {
        "policy_loss": pg,
        "kl_loss": kl_loss,
        "entropy": entropy,
        "approx_kl": masked_mean((token_ratio - 1.0) - jnp.log(token_ratio), mask),
        "ratio_max": jnp.max(jnp.where(mask > 0, jnp.exp(jax.lax.stop_gradient(log_ratio)), 1.0)),
        **clip_fractions(log_ratio, batch.advantages, cfg.clip_eps_low, cfg.clip_eps_high, mask),
    }
    if actor.shared_value_head:
        v_loss, v_metrics = value_loss(out.values, batch, cfg)
        loss = loss + cfg.vf_coef * v_loss
        metrics.update(v_metrics)
    return loss, metrics
