"""Deterministic policy-gradient losses (DDPG, TD3).

Shapes: ``B`` any leading batch axes; actions ``[*B, D]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float
from jaxrl.core._checks import check_hyperparameter as _check_eps

__all__ = ["dpg_actor_loss", "td3_target_actions"]


def dpg_actor_loss(q_values) -> jax.Array:
    """Deterministic policy-gradient actor loss (DDPG, TD3), L = −mean(Q(s, μ(s))).

    See Silver et al., Deterministic Policy Gradient Algorithms (2014):
    https://proceedings.mlr.press/v32/silver14.html, and Lillicrap et al., DDPG:
    https://arxiv.org/abs/1509.02971

    Args:
      q_values: Q(s, μ(s)), ``[*B]``.

    Returns:
      Scalar loss.
    """
    return -jnp.mean(as_float(q_values, "q_values"))


def td3_target_actions(key, target_actions, noise_std, noise_clip, low, high) -> jax.Array:
    """TD3's target policy smoothing: clipped Gaussian noise on the target actor's actions.

        a' = clip(μ'(s') + clip(σ·ε, −c, c), low, high),  ε ~ N(0, I)

    See Fujimoto et al., Addressing Function Approximation Error in Actor-Critic
    Methods: https://arxiv.org/abs/1802.09477

    Args:
      key: a JAX PRNG key.
      target_actions: μ'(s'), ``[*B, D]``.
      noise_std: σ ≥ 0, scalar or broadcastable to ``[D]``.
      noise_clip: c ≥ 0, scalar or broadcastable to ``[D]``.
      low: lower action bounds, scalar or ``[D]``.
      high: upper action bounds, scalar or ``[D]``.

    Returns:
      Smoothed target actions, ``[*B, D]``.
    """
    _check_eps(noise_std, "noise_std")
    _check_eps(noise_clip, "noise_clip")
    target_actions = as_float(target_actions, "target_actions")
    noise = noise_std * jax.random.normal(key, target_actions.shape, target_actions.dtype)
    noise = jnp.clip(noise, -noise_clip, noise_clip)
    return jnp.clip(target_actions + noise, low, high)
