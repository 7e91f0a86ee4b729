"""Math on sampled token sequences for LLM-side RL: per-token KL estimates.

Shapes: ``B`` stands for any leading axes, typically ``[N, L]`` (sequences ×
tokens). Log-probabilities are those of the sampled tokens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float
from jaxrl.core.value import _check_like

__all__ = ["kl_estimate"]

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
