"""KL divergence between a policy and its reference on sampled tokens, and the adaptive β.

``kl_estimate`` gives per-sample estimates of KL(p ‖ p_ref) from log-probabilities
of samples drawn from p; the controller adapts the KL penalty coefficient β of
RLHF-PPO to a target KL. Shapes: any ``[*B]``, usually tokens ``[N, L]``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float
from jaxrl.core.value import _check_like

__all__ = ["KLControllerState", "kl_controller_init", "kl_controller_update", "kl_estimate"]

_KINDS = ("k1", "k2", "k3")


def kl_estimate(log_p, log_p_ref, kind: str = "k3") -> jax.Array:
    """Per-sample estimate of KL(p ‖ p_ref) for samples x ~ p.

        δ = log p(x) − log p_ref(x)
        k1 = δ                   unbiased, high variance, can be negative
        k2 = δ² / 2              biased, low variance, ≥ 0
        k3 = e^(−δ) − 1 + δ      unbiased, low variance, ≥ 0

    Averaged over samples from p, k1 and k3 are unbiased for KL(p ‖ p_ref); k3
    is the estimator of GRPO's KL penalty. See Schulman, Approximating KL
    divergence: http://joschu.net/blog/kl-approx.html

    Args:
      log_p: log p(x) of the samples, ``[*B]``.
      log_p_ref: log p_ref(x) of the same samples, ``[*B]`` (or size-1 axes, or scalar).
      kind: one of "k1", "k2", "k3".

    Returns:
      Estimates, ``[*B]``.
    """
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {_KINDS}, got {kind!r}")
    log_p, log_p_ref = as_float(log_p, "log_p"), as_float(log_p_ref, "log_p_ref")
    _check_like(log_p_ref, log_p.shape, "log_p_ref", "log_p")
    delta = log_p - log_p_ref
    if kind == "k1":
        return delta
    if kind == "k2":
        return 0.5 * jnp.square(delta)
    # expm1 keeps precision for small δ, where e^(−δ) − 1 + δ ≈ δ²/2 cancels badly.
    return jnp.expm1(-delta) + delta


class KLControllerState(NamedTuple):
    """State of the adaptive KL controller."""

    kl_coef: jax.Array  # [] current β


def kl_controller_init(kl_coef) -> KLControllerState:
    """Starts the adaptive KL controller at β = ``kl_coef`` (≥ 0)."""
    if isinstance(kl_coef, (int, float)) and not kl_coef >= 0:
        raise ValueError(f"`kl_coef` must be >= 0, got {kl_coef}")
    return KLControllerState(jnp.asarray(kl_coef, jnp.float32))


def kl_controller_update(
    state: KLControllerState, kl, n_steps, target_kl, horizon
) -> KLControllerState:
    """Adaptive KL coefficient: raise β when the KL exceeds its target, lower it when below.

        e = clip(KL / KL_target − 1, −0.2, 0.2)
        β ← β · (1 + e · n_steps / horizon)

    See Ziegler et al., Fine-Tuning Language Models from Human Preferences,
    section 2.2: https://arxiv.org/abs/1909.08593

    Args:
      state: the controller state.
      kl: the measured KL(π ‖ π_ref) per sequence of the last batch, scalar.
      n_steps: the number of samples (sequences) that batch held, scalar.
      target_kl: KL_target > 0, scalar.
      horizon: the horizon H > 0 (in samples), scalar.

    Returns:
      The new state.
    """
    for name, v in (("target_kl", target_kl), ("horizon", horizon)):
        if isinstance(v, (int, float)) and not v > 0:
            raise ValueError(f"`{name}` must be > 0, got {v}")
    error = jnp.clip(as_float(kl, "kl") / target_kl - 1.0, -0.2, 0.2)
    return KLControllerState(state.kl_coef * (1.0 + error * n_steps / horizon))
