"""Math on sampled token sequences for LLM-side RL (GRPO, RLOO, RLHF-PPO).

Shapes: ``N`` is the number of sequences (prompts × samples), ``G`` the
samples per prompt, ``L`` the number of token positions. Token arrays are
``[N, L]`` with the token axis last (the layout of generated sequences), and a
``mask`` ``[N, L]`` marks the real completion tokens with 1 (prompt and padding
0). Log-probabilities are those of the sampled tokens. The recursion of
:func:`token_gae` runs over the last axis; positions whose mask is 0 are skipped
by it, as if they were not there.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core._checks import as_float, check_min_rank, check_rank, check_same_shape
from jaxrl.core.kl import (  # noqa: F401
    KLControllerState,
    kl_controller_init,
    kl_controller_update,
    kl_estimate,  # noqa: F401 (moved; importable from here)
)
from jaxrl.core.policy import masked_mean
from jaxrl.core.value import _check_like

__all__ = [
    "AGGREGATIONS",
    "aggregate_loss",
    "aggregation_weights",
    "clip_fractions",
    "group_advantages",
    "informative_groups",
    "kl_penalized_rewards",
    "last_token_mask",
    "masked_sum",
    "masked_var",
    "masked_whiten",
    "sequence_log_ratio",
    "token_gae",
]

_GROUP_KINDS = ("grpo", "dr_grpo", "rloo")
AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm")


def _float_mask(mask, x, name: str = "mask") -> jax.Array:
    mask = as_float(mask, name)
    _check_like(mask, x.shape, name, "x")
    return jnp.broadcast_to(mask, x.shape)


def masked_sum(x, mask, axis=None) -> jax.Array:
    """Σ mask·x over ``axis`` (all axes when None); entries with mask 0 are dropped.

    Dropping (rather than multiplying by 0) keeps a NaN or ∞ in padding out of
    the result and its gradient. For the masked mean use
    :func:`jaxrl.core.masked_mean`.

    Args:
      x: values, ``[*B]``.
      mask: 0/1, bool or non-negative weights with the rank of ``x``, broadcasting to it.
      axis: axis or axes to sum over, or None for all.

    Returns:
      The sums, ``[*B]`` without ``axis``.
    """
    x = as_float(x, "x")
    mask = _float_mask(mask, x)
    return jnp.sum(jnp.where(mask != 0, x * mask, 0.0), axis=axis)


def masked_var(x, mask, unbiased: bool = True) -> jax.Array:
    """Variance of the entries of ``x`` where ``mask`` is 1, with Bessel's correction by default.

        μ = Σ m·x / Σ m,   σ² = Σ m·(x − μ)² / (Σ m − 1)    (Σ m without the −1 if biased)

    Args:
      x: values, ``[*B]``.
      mask: 0/1 or bool, with the rank of ``x``, broadcasting to it.
      unbiased: divide by Σ m − 1 (Bessel) instead of Σ m.

    Returns:
      Scalar (0 when fewer than two entries, or one when biased, are unmasked).
    """
    x = as_float(x, "x")
    mask = _float_mask(mask, x)
    mean = masked_mean(x, mask)
    count = jnp.sum(mask)
    denom = count - 1.0 if unbiased else count
    total = masked_sum(jnp.square(x - mean), mask)
    return jnp.where(denom > 0, total / jnp.where(denom > 0, denom, 1.0), 0.0)


def masked_whiten(x, mask, shift_mean: bool = True, eps: float = 1e-8) -> jax.Array:
    """Normalises ``x`` to zero mean and unit variance over its unmasked entries.

        y = (x − μ) / √(σ² + ε)       (+ μ when ``shift_mean`` is False)

    with μ and σ² (Bessel-corrected) from :func:`masked_var`. Used for PPO's
    advantage whitening over the completion tokens of a batch. Entries with mask
    0 are set to 0.

    Args:
      x: values, ``[*B]``.
      mask: 0/1 or bool with the rank of ``x``, broadcasting to it.
      shift_mean: subtract the mean (False keeps it and only rescales).
      eps: added to the variance.

    Returns:
      Whitened values, ``[*B]``.
    """
    x = as_float(x, "x")
    mask = _float_mask(mask, x)
    mean = masked_mean(x, mask)
    y = (x - mean) * jax.lax.rsqrt(masked_var(x, mask) + eps)
    if not shift_mean:
        y = y + mean
    return jnp.where(mask != 0, y, 0.0)


def group_advantages(rewards, kind: str = "grpo", eps: float = 1e-6) -> jax.Array:
    """Advantages of G samples per prompt, baselined by the other samples of the group.

        grpo     Âᵢ = (rᵢ − mean(r)) / (std(r) + ε)      std with Bessel's correction
        dr_grpo  Âᵢ = rᵢ − mean(r)                        no std (Dr. GRPO)
        rloo     Âᵢ = rᵢ − mean_{j≠i} rⱼ = G/(G−1)·(rᵢ − mean(r))

    A group whose rewards are all equal gets advantages 0 in every kind. See
    Shao et al., DeepSeekMath (GRPO): https://arxiv.org/abs/2402.03300; Liu et
    al., Understanding R1-Zero-Like Training (Dr. GRPO):
    https://arxiv.org/abs/2503.20783; Ahmadian et al., Back to Basics (RLOO):
    https://arxiv.org/abs/2402.14740

    Args:
      rewards: ``[N, G]``, one row per prompt (``[*N, G]`` also works).
      kind: "grpo", "dr_grpo" or "rloo".
      eps: ε added to the std ("grpo" only).

    Returns:
      Advantages, ``[N, G]``.
    """
    if kind not in _GROUP_KINDS:
        raise ValueError(f"`kind` must be one of {_GROUP_KINDS}, got {kind!r}")
    rewards = as_float(rewards, "rewards")
    check_min_rank(rewards, 1, "rewards")
    g = rewards.shape[-1]
    if g < 2 and kind != "dr_grpo":
        raise ValueError(
            f"`rewards` has {g} sample per group (last axis, shape {rewards.shape}); "
            f"kind {kind!r} needs at least 2"
        )
    centred = rewards - jnp.mean(rewards, axis=-1, keepdims=True)
    if kind == "dr_grpo":
        return centred
    if kind == "rloo":
        return centred * (g / (g - 1.0))
    std = jnp.std(rewards, axis=-1, keepdims=True, ddof=1)
    return centred / (std + eps)


def informative_groups(rewards) -> jax.Array:
    """1 for a group whose rewards differ, 0 for one whose rewards are all equal.

    An all-equal group has advantage 0 in every kind of :func:`group_advantages`:
    it carries no policy-gradient signal. DAPO's dynamic sampling keeps only the
    other groups (Yu et al.: https://arxiv.org/abs/2503.14476).

    Args:
      rewards: ``[N, G]``, one row per prompt.

    Returns:
      0/1 float32, ``[N]``.
    """
    rewards = as_float(rewards, "rewards")
    check_min_rank(rewards, 1, "rewards")
    return (jnp.ptp(rewards, axis=-1) > 0).astype(jnp.float32)


def sequence_log_ratio(log_ratio, mask) -> jax.Array:
    """GSPO's length-normalised sequence log importance ratio.

        log sᵢ = (1/|yᵢ|)·Σₜ mᵢₜ·(log π_θ(yᵢₜ) − log π_old(yᵢₜ)),   |yᵢ| = Σₜ mᵢₜ

    sᵢ = exp(log sᵢ) is the geometric mean of the token ratios; GSPO clips it once
    per sequence instead of each token's ratio. See Zheng et al., Group Sequence
    Policy Optimization: https://arxiv.org/abs/2507.18071

    Args:
      log_ratio: per-token log π_θ − log π_old, ``[N, L]``.
      mask: completion mask, ``[N, L]``.

    Returns:
      ``[N]`` (0 for an empty row); the gradient flows through ``log_ratio``.
    """
    log_ratio = as_float(log_ratio, "log_ratio")
    check_min_rank(log_ratio, 1, "log_ratio")
    check_same_shape({"log_ratio": log_ratio, "mask": mask})
    length = jnp.sum(jnp.asarray(mask) != 0, axis=-1)
    return masked_sum(log_ratio, mask, axis=-1) / jnp.maximum(length, 1)


def last_token_mask(mask) -> jax.Array:
    """One-hot of the last position whose mask is 1 in each sequence (all 0 for an empty row).

    Args:
      mask: completion mask, ``[*N, L]``.

    Returns:
      0/1 float32, ``[*N, L]``.
    """
    check_min_rank(mask, 1, "mask")
    on = jnp.asarray(mask) != 0
    length = on.shape[-1]
    last = length - 1 - jnp.argmax(on[..., ::-1], axis=-1)
    onehot = jax.nn.one_hot(last, length, dtype=jnp.float32)
    return onehot * jnp.any(on, axis=-1, keepdims=True)


def kl_penalized_rewards(
    scores, log_probs, ref_log_probs, mask, kl_coef, kind: str = "k1"
) -> jax.Array:
    """Per-token rewards of RLHF: a KL penalty on every token, the score on the last one.

        rₜ = −β·kl(log π(yₜ) − log π_ref(yₜ)) + 1[t = last real token]·score

    See Ziegler et al., Fine-Tuning Language Models from Human Preferences:
    https://arxiv.org/abs/1909.08593, and Ouyang et al. (InstructGPT):
    https://arxiv.org/abs/2203.02155

    Args:
      scores: sequence-level rewards (reward model or verifier), ``[N]``.
      log_probs: log π of the sampled tokens under the sampling policy, ``[N, L]``.
      ref_log_probs: log π_ref of the same tokens, ``[N, L]``.
      mask: completion mask, ``[N, L]``; rewards are 0 where it is 0.
      kl_coef: β ≥ 0, scalar (may be traced).
      kind: the KL estimator of :func:`kl_estimate`.

    Returns:
      Rewards, ``[N, L]``. Equal to the score on the last token when π = π_ref.
    """
    log_probs = as_float(log_probs, "log_probs")
    check_min_rank(log_probs, 1, "log_probs")
    scores = as_float(scores, "scores")
    if scores.shape != log_probs.shape[:-1]:
        raise ValueError(
            f"`scores` has shape {scores.shape}; it must be the shape {log_probs.shape[:-1]} "
            "of `log_probs` without its token axis"
        )
    check_same_shape({"log_probs": log_probs, "ref_log_probs": ref_log_probs, "mask": mask})
    if isinstance(kl_coef, (int, float)) and not kl_coef >= 0:
        raise ValueError(f"`kl_coef` must be >= 0, got {kl_coef}")
    on = jnp.asarray(mask) != 0
    kl = kl_estimate(log_probs, ref_log_probs, kind)
    rewards = jnp.where(on, -kl_coef * kl, 0.0)
    return rewards + last_token_mask(mask) * scores[..., None]


class _GAECarry(NamedTuple):
    next_value: jax.Array  # [*N] value of the next real token (0 after the last)
    next_advantage: jax.Array  # [*N]


def token_gae(rewards, values, mask, gamma=1.0, lambda_=0.95) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over the real tokens of each completion.

        δₜ = rₜ + γ·V(next real token) − V(t)      (V after the last real token = 0)
        Aₜ = δₜ + γλ·A(next real token),            returnsₜ = Aₜ + V(t)

    Positions whose mask is 0 are skipped: their rewards and values do not enter
    any advantage or return, and their own outputs are 0. The completion ends at
    its last real token, a true terminal (no bootstrap). For a contiguous mask
    this equals :func:`jaxrl.core.gae` with ``terminated`` at the last token.
    See Schulman et al., GAE: https://arxiv.org/abs/1506.02438, and Zheng et
    al., Secrets of RLHF in Large Language Models Part I: PPO:
    https://arxiv.org/abs/2307.04964

    Args:
      rewards: per-token rewards, ``[N, L]``.
      values: per-token values V(t), ``[N, L]``.
      mask: completion mask, ``[N, L]``.
      gamma, lambda_: scalars (may be traced).

    Returns:
      ``(advantages, returns)``, each ``[N, L]``, gradients stopped.
    """
    rewards, values = as_float(rewards, "rewards"), as_float(values, "values")
    check_min_rank(rewards, 1, "rewards")
    check_same_shape({"rewards": rewards, "values": values, "mask": mask})
    for name, v in (("gamma", gamma), ("lambda_", lambda_)):
        check_rank(v, 0, name)
    on = jnp.moveaxis(jnp.asarray(mask) != 0, -1, 0)
    r_t, v_t = jnp.moveaxis(rewards, -1, 0), jnp.moveaxis(values, -1, 0)

    def step(carry: _GAECarry, x):
        r, v, keep = x
        delta = r + gamma * carry.next_value - v
        adv = delta + gamma * lambda_ * carry.next_advantage
        new = _GAECarry(
            jnp.where(keep, v, carry.next_value), jnp.where(keep, adv, carry.next_advantage)
        )
        return new, jnp.where(keep, adv, 0.0)

    zeros = jnp.zeros_like(r_t[0])
    _, adv = jax.lax.scan(step, _GAECarry(zeros, zeros), (r_t, v_t, on), reverse=True)
    advantages = jnp.moveaxis(adv, 0, -1)
    returns = jnp.where(jnp.moveaxis(on, 0, -1), advantages + values, 0.0)
    return jax.lax.stop_gradient((advantages, returns))


def aggregation_weights(mask, mode: str = "token_mean", max_len: int | None = None) -> jax.Array:
    """Per-token weights wᵢₜ such that a loss aggregated by ``mode`` equals Σᵢₜ wᵢₜ·ℓᵢₜ.

        token_mean               w = m / Σ m                     (all tokens equal; DAPO)
        seq_mean_token_mean      w = m / (Lᵢ · N')               (GRPO; Lᵢ = Σₜ mᵢₜ, N' = #{Lᵢ > 0})
        seq_mean_token_sum_norm  w = m / (N · C)                 (Dr. GRPO; C a constant length)

    See Yu et al., DAPO: https://arxiv.org/abs/2503.14476, and Liu et al., Dr.
    GRPO: https://arxiv.org/abs/2503.20783

    Args:
      mask: completion mask, ``[N, L]``.
      mode: one of ``AGGREGATIONS``.
      max_len: C for "seq_mean_token_sum_norm" (default L, the padded length); it
        must stay fixed across batches for the loss to be comparable.

    Returns:
      Weights, ``[N, L]``, gradients stopped; all 0 for an all-zero mask.
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"`mode` must be one of {AGGREGATIONS}, got {mode!r}")
    check_min_rank(mask, 2, "mask")
    if max_len is not None and not (isinstance(max_len, (int, np.integer)) and max_len > 0):
        raise ValueError(f"`max_len` must be a positive integer or None, got {max_len!r}")
    m = as_float(mask, "mask")
    m = jnp.where(m != 0, m, 0.0)
    if mode == "token_mean":
        total = jnp.sum(m)
        w = m / jnp.where(total > 0, total, 1.0)
    elif mode == "seq_mean_token_mean":
        lengths = jnp.sum(m, axis=-1, keepdims=True)
        n_seq = jnp.sum(lengths > 0)
        w = m / (jnp.where(lengths > 0, lengths, 1.0) * jnp.maximum(n_seq, 1))
    else:
        n_seq = int(np.prod(m.shape[:-1]))
        w = m / (n_seq * float(max_len or m.shape[-1]))
    return jax.lax.stop_gradient(w)


def aggregate_loss(
    per_token, mask, mode: str = "token_mean", max_len: int | None = None
) -> jax.Array:
    """Aggregates a per-token loss over the real tokens: Σᵢₜ wᵢₜ·ℓᵢₜ.

    The weights w are those of :func:`aggregation_weights`.

    Args:
      per_token: per-token losses ℓ, ``[N, L]``.
      mask: completion mask, ``[N, L]``.
      mode: one of ``AGGREGATIONS``.
      max_len: the constant length of "seq_mean_token_sum_norm" (default L).

    Returns:
      Scalar loss.
    """
    per_token = as_float(per_token, "per_token")
    check_same_shape({"per_token": per_token, "mask": mask})
    return masked_sum(per_token, aggregation_weights(mask, mode, max_len))


def clip_fractions(log_ratio, advantages, clip_eps_low, clip_eps_high, mask) -> dict:
    """Shares of real tokens whose PPO ratio is clipped at the low and at the high end.

        low:  ρ < 1 − ε_low  and A < 0      high: ρ > 1 + ε_high and A > 0

    (the tokens whose gradient the clipped objective sets to 0).

    Args:
      log_ratio: log π − log π_old, ``[N, L]``.
      advantages: ``[N, L]`` (or size-1 axes).
      clip_eps_low, clip_eps_high: ε_low, ε_high, scalars.
      mask: completion mask, ``[N, L]``.

    Returns:
      ``{"clip_fraction_low", "clip_fraction_high"}``, scalars.
    """
    log_ratio = jax.lax.stop_gradient(as_float(log_ratio, "log_ratio"))
    advantages = as_float(advantages, "advantages")
    _check_like(advantages, log_ratio.shape, "advantages", "log_ratio")
    ratio = jnp.exp(log_ratio)
    low = (ratio < 1.0 - clip_eps_low) & (advantages < 0)
    high = (ratio > 1.0 + clip_eps_high) & (advantages > 0)
    return {
        "clip_fraction_low": masked_mean(low, mask),
        "clip_fraction_high": masked_mean(high, mask),
    }
