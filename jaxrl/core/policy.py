"""Policy losses: policy gradient, actor-critic, PPO and the trust-region pieces (TRPO).

SAC's losses are in :mod:`jaxrl.core.sac`, DDPG/TD3's in :mod:`jaxrl.core.dpg`
(both re-exported here and by :mod:`jaxrl.core`).

Shapes: ``B`` stands for any number of leading batch axes (``[B]``, ``[T, B]``,
``[N, L]`` for tokens) and ``A`` for the number of discrete actions; a Gaussian
policy's action dimensions are the last axis ``D``.

Losses are means over all elements, or masked means when a ``mask`` is given
(``Σ mask·x / Σ mask``; 0 when the mask is all zero). A ``mask`` and the
advantages must have the rank of the log-probabilities and broadcast to them, so
per-sequence advantages for token log-probs ``[N, L]`` are passed as ``[N, 1]``.
Advantages, old log-probabilities and temperatures that are learned by a loss of
their own (SAC's α) never receive gradient from these losses. Losses that
combine several terms return ``(loss, metrics)`` with a dict of scalars; the
single-term ones return the scalar.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float, check_min_rank, check_same_shape
from jaxrl.core._checks import check_hyperparameter as _check_eps
from jaxrl.core.value import _check_like

__all__ = [
    "masked_mean",
    "policy_gradient_loss",
    "categorical_entropy",
    "entropy_loss",
    "actor_critic_loss",
    "ppo_clip_loss",
    "ppo_kl_penalty_loss",
    "categorical_kl",
    "gaussian_kl",
    "trpo_surrogate",
]

_sg = jax.lax.stop_gradient


def masked_mean(x, mask=None) -> jax.Array:
    """Mean of ``x``, or its mask-weighted mean ``Σ mask·x / Σ mask`` (0 if ``Σ mask = 0``).

    Entries where the mask is zero are dropped, not multiplied by zero, so a
    NaN or ∞ in padding does not reach the result or its gradient.

    Args:
      x: values, ``[*B]``.
      mask: optional 0/1, bool or non-negative weights with the rank of ``x``,
        broadcasting to it.

    Returns:
      Scalar.
    """
    x = as_float(x, "x")
    if mask is None:
        return jnp.mean(x)
    mask = as_float(mask, "mask")
    _check_like(mask, x.shape, "mask", "x")
    mask = jnp.broadcast_to(mask, x.shape)
    keep = mask != 0
    total = jnp.sum(jnp.where(keep, x * mask, 0.0))
    count = jnp.sum(mask)
    return total / jnp.where(count > 0, count, 1.0)


def _logs_and_adv(log_probs, advantages, name: str = "log_probs"):
    log_probs = as_float(log_probs, name)
    advantages = as_float(advantages, "advantages")
    _check_like(advantages, log_probs.shape, "advantages", name)
    return log_probs, _sg(advantages)


def policy_gradient_loss(log_probs, advantages, mask=None) -> tuple[jax.Array, dict]:
    """REINFORCE / vanilla policy-gradient loss.

        L = −mean(log π(aₜ|sₜ) · Aₜ)    (A held constant)

    With Aₜ = Gₜ − b(sₜ) this is REINFORCE with a baseline. See Williams, Simple
    statistical gradient-following algorithms (1992):
    https://link.springer.com/article/10.1007/BF00992696

    Args:
      log_probs: log π(a|s) of the taken actions, ``[*B]``.
      advantages: advantage or return estimates, ``[*B]`` (or size-1 axes).
      mask: optional weights, ``[*B]`` (or size-1 axes).

    Returns:
      ``(loss, {"policy_loss"})``, scalars.
    """
    log_probs, advantages = _logs_and_adv(log_probs, advantages)
    loss = -masked_mean(log_probs * advantages, mask)
    return loss, {"policy_loss": loss}


def categorical_entropy(logits) -> jax.Array:
    """Entropy of a softmax policy, H = −Σₐ π(a) log π(a).

    Logits of −∞ (masked actions) contribute 0, with finite gradients.

    Args:
      logits: unnormalised log-probabilities, ``[*B, A]``.

    Returns:
      Entropies, ``[*B]``.
    """
    logits = as_float(logits, "logits")
    check_min_rank(logits, 1, "logits")
    log_p = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(log_p)
    # Replacing −∞ by 0 before the product keeps 0·(−∞) out of value and gradient.
    return -jnp.sum(p * jnp.where(p > 0, log_p, 0.0), axis=-1)


def entropy_loss(entropy, mask=None) -> jax.Array:
    """Entropy bonus as a loss to minimise, L = −mean(H).

    Args:
      entropy: per-element policy entropies, ``[*B]``.
      mask: optional weights, ``[*B]``.

    Returns:
      Scalar loss.
    """
    return -masked_mean(entropy, mask)


def actor_critic_loss(
    log_probs,
    advantages,
    values,
    targets,
    entropy,
    value_coef,
    entropy_coef,
    mask=None,
) -> tuple[jax.Array, dict]:
    """Advantage actor-critic (A2C) loss: policy gradient + value regression − entropy bonus.

        L = −mean(log π · A) + c_v · mean(½(V − G)²) − c_H · mean(H)

    A and G are held constant. See Mnih et al., Asynchronous Methods for Deep
    Reinforcement Learning: https://arxiv.org/abs/1602.01783. Without a critic
    (``values`` None: REINFORCE without a baseline) the value term is left out
    and ``value_loss`` is 0.

    Args:
      log_probs: log π(a|s) of the taken actions, ``[*B]``.
      advantages: advantages, ``[*B]``.
      values: value predictions V(s), ``[*B]``, or None.
      targets: value targets G, ``[*B]`` (unread when ``values`` is None).
      entropy: policy entropies, ``[*B]``.
      value_coef: c_v, scalar.
      entropy_coef: c_H, scalar.
      mask: optional weights, ``[*B]``.

    Returns:
      ``(loss, {"policy_loss", "value_loss", "entropy"})``, scalars.
    """
    log_probs, advantages = _logs_and_adv(log_probs, advantages)
    shaped = {"log_probs": log_probs}
    if values is not None:
        values, targets = as_float(values, "values"), as_float(targets, "targets")
        shaped["values"] = values
    entropy = shaped["entropy"] = as_float(entropy, "entropy")
    check_same_shape(shaped)
    if values is not None:
        _check_like(targets, values.shape, "targets", "values")
    policy_loss = -masked_mean(log_probs * advantages, mask)
    mean_entropy = masked_mean(entropy, mask)
    if values is None:
        value_loss = jnp.zeros((), jnp.float32)
        loss = policy_loss - entropy_coef * mean_entropy
    else:
        value_loss = masked_mean(0.5 * jnp.square(values - _sg(targets)), mask)
        loss = policy_loss + value_coef * value_loss - entropy_coef * mean_entropy
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": mean_entropy}


def ppo_clip_loss(
    log_ratio,
    advantages,
    clip_eps=None,
    *,
    clip_eps_low=None,
    clip_eps_high=None,
    mask=None,
) -> tuple[jax.Array, dict]:
    """PPO's clipped surrogate loss, symmetric or with DAPO's asymmetric "clip-higher".

        ρ = exp(log π − log π_old)
        L = −mean(min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A))

    Pass either ``clip_eps`` (ε_low = ε_high = ε) or both ``clip_eps_low`` and
    ``clip_eps_high``. Metrics: ``clip_fraction`` is the share of elements whose
    clipped term is strictly the smaller one (their gradient is zero);
    ``approx_kl`` is mean((ρ − 1) − log ρ), the k3 estimator of KL(π_old ‖ π).

    See Schulman et al., Proximal Policy Optimization Algorithms:
    https://arxiv.org/abs/1707.06347, and Yu et al., DAPO:
    https://arxiv.org/abs/2503.14476

    Args:
      log_ratio: log π(a|s) − log π_old(a|s) of the taken actions, ``[*B]``.
      advantages: advantages, ``[*B]`` (or size-1 axes).
      clip_eps: symmetric ε ≥ 0.
      clip_eps_low: ε_low in [0, 1] (asymmetric form).
      clip_eps_high: ε_high ≥ 0 (asymmetric form).
      mask: optional weights, ``[*B]`` (or size-1 axes).

    Returns:
      ``(loss, {"policy_loss", "clip_fraction", "approx_kl"})``, scalars.
    """
    asym = (clip_eps_low is not None, clip_eps_high is not None)
    if clip_eps is not None and any(asym):
        raise ValueError(
            "pass either `clip_eps` or both `clip_eps_low` and `clip_eps_high`, not both forms "
            f"(got clip_eps={clip_eps}, clip_eps_low={clip_eps_low}, "
            f"clip_eps_high={clip_eps_high})"
        )
    if clip_eps is None and not all(asym):
        raise ValueError(
            "pass either `clip_eps` or both `clip_eps_low` and `clip_eps_high` "
            f"(got clip_eps=None, clip_eps_low={clip_eps_low}, clip_eps_high={clip_eps_high})"
        )
    if clip_eps is not None:
        _check_eps(clip_eps, "clip_eps")
        low, high = clip_eps, clip_eps
    else:
        _check_eps(clip_eps_low, "clip_eps_low", upper=1.0)
        _check_eps(clip_eps_high, "clip_eps_high")
        low, high = clip_eps_low, clip_eps_high
    log_ratio, advantages = _logs_and_adv(log_ratio, advantages, "log_ratio")
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - low, 1.0 + high) * advantages
    loss = -masked_mean(jnp.minimum(unclipped, clipped), mask)
    clip_fraction = masked_mean(_sg(clipped < unclipped), mask)
    approx_kl = masked_mean(_sg((ratio - 1.0) - log_ratio), mask)
    return loss, {"policy_loss": loss, "clip_fraction": clip_fraction, "approx_kl": approx_kl}


def ppo_kl_penalty_loss(log_ratio, advantages, kl, beta, mask=None) -> tuple[jax.Array, dict]:
    """PPO's KL-penalised surrogate loss.

        L = −mean(ρ·A) + β · mean(KL),  ρ = exp(log π − log π_old)

    ``kl`` is a per-element divergence between the old and the new policy (e.g.
    ``categorical_kl`` or ``gaussian_kl``), through which the gradient flows; β
    is held constant (adapt it outside). See Schulman et al., Proximal Policy
    Optimization Algorithms, §4: https://arxiv.org/abs/1707.06347

    Args:
      log_ratio: log π(a|s) − log π_old(a|s) of the taken actions, ``[*B]``.
      advantages: advantages, ``[*B]`` (or size-1 axes).
      kl: per-element KL, ``[*B]`` (or size-1 axes).
      beta: penalty coefficient β, scalar.
      mask: optional weights, ``[*B]``.

    Returns:
      ``(loss, {"policy_loss", "kl", "approx_kl"})``, scalars; ``policy_loss`` is
      the surrogate term alone.
    """
    log_ratio, advantages = _logs_and_adv(log_ratio, advantages, "log_ratio")
    kl = as_float(kl, "kl")
    _check_like(kl, log_ratio.shape, "kl", "log_ratio")
    kl = jnp.broadcast_to(kl, log_ratio.shape)
    ratio = jnp.exp(log_ratio)
    policy_loss = -masked_mean(ratio * advantages, mask)
    mean_kl = masked_mean(kl, mask)
    loss = policy_loss + _sg(beta) * mean_kl
    approx_kl = masked_mean(_sg((ratio - 1.0) - log_ratio), mask)
    return loss, {"policy_loss": policy_loss, "kl": mean_kl, "approx_kl": approx_kl}


def categorical_kl(logits_p, logits_q) -> jax.Array:
    """KL divergence between two softmax distributions, KL(p‖q) = Σₐ p(a)(log p(a) − log q(a)).

    Actions with p(a) = 0 contribute 0; p(a) > 0 with q(a) = 0 gives +∞.

    Args:
      logits_p: logits of p, ``[*B, A]``.
      logits_q: logits of q, ``[*B, A]``.

    Returns:
      KL(p‖q), ``[*B]``.
    """
    logits_p, logits_q = as_float(logits_p, "logits_p"), as_float(logits_q, "logits_q")
    check_min_rank(logits_p, 1, "logits_p")
    check_same_shape({"logits_p": logits_p, "logits_q": logits_q})
    log_p = jax.nn.log_softmax(logits_p, axis=-1)
    log_q = jax.nn.log_softmax(logits_q, axis=-1)
    p = jnp.exp(log_p)
    return jnp.sum(p * jnp.where(p > 0, log_p - log_q, 0.0), axis=-1)


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) -> jax.Array:
    """KL divergence between diagonal Gaussians, summed over the action dimensions.

        KL(p‖q) = Σ_d [log σ_q − log σ_p + (σ_p² + (μ_p − μ_q)²) / (2σ_q²) − ½]

    Args:
      mean_p: means of p, ``[*B, D]``.
      log_std_p: log standard deviations of p, ``[*B, D]`` (or size-1 axes).
      mean_q: means of q, ``[*B, D]``.
      log_std_q: log standard deviations of q, ``[*B, D]`` (or size-1 axes).

    Returns:
      KL(p‖q), ``[*B]``.
    """
    mean_p, mean_q = as_float(mean_p, "mean_p"), as_float(mean_q, "mean_q")
    log_std_p, log_std_q = as_float(log_std_p, "log_std_p"), as_float(log_std_q, "log_std_q")
    check_min_rank(mean_p, 1, "mean_p")
    check_same_shape({"mean_p": mean_p, "mean_q": mean_q})
    _check_like(log_std_p, mean_p.shape, "log_std_p", "mean_p")
    _check_like(log_std_q, mean_p.shape, "log_std_q", "mean_p")
    var_ratio = jnp.exp(2.0 * (log_std_p - log_std_q))
    mahalanobis = jnp.square((mean_p - mean_q) * jnp.exp(-log_std_q))
    per_dim = log_std_q - log_std_p + 0.5 * (var_ratio + mahalanobis - 1.0)
    return jnp.sum(jnp.broadcast_to(per_dim, mean_p.shape), axis=-1)


def trpo_surrogate(log_probs, old_log_probs, advantages, mask=None) -> jax.Array:
    """TRPO's importance-sampled surrogate objective (to maximise).

        L = mean(exp(log π − log π_old) · A)

    ``old_log_probs`` and A are held constant. See Schulman et al., Trust Region
    Policy Optimization: https://arxiv.org/abs/1502.05477

    Args:
      log_probs: log π(a|s) under the current policy, ``[*B]``.
      old_log_probs: log π_old(a|s) under the policy that collected the data, ``[*B]``.
      advantages: advantages, ``[*B]`` (or size-1 axes).
      mask: optional weights, ``[*B]``.

    Returns:
      Scalar surrogate.
    """
    log_probs, advantages = _logs_and_adv(log_probs, advantages)
    old_log_probs = as_float(old_log_probs, "old_log_probs")
    check_same_shape({"log_probs": log_probs, "old_log_probs": old_log_probs})
    return masked_mean(jnp.exp(log_probs - _sg(old_log_probs)) * advantages, mask)
