"""Soft actor-critic losses: continuous (reparameterised) and discrete actions.

See Haarnoja et al., Soft Actor-Critic Algorithms and Applications:
https://arxiv.org/abs/1812.05905, and Christodoulou, Soft Actor-Critic for
Discrete Action Settings: https://arxiv.org/abs/1910.07207

Shapes: ``B`` any leading batch axes, ``A`` the number of discrete actions. The
temperature α never receives gradient from the actor and critic losses; it has
a loss of its own.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float, check_min_rank, check_same_shape
from jaxrl.core.value import _check_like

__all__ = [
    "sac_actor_loss",
    "sac_soft_target",
    "sac_alpha_loss",
    "sac_discrete_actor_loss",
    "sac_discrete_soft_value",
    "sac_discrete_alpha_loss",
]

_sg = jax.lax.stop_gradient


def sac_actor_loss(log_probs, q_values, alpha) -> jax.Array:
    """Soft actor-critic policy loss for a reparameterised action a ~ π(·|s).

        L = mean(α · log π(a|s) − Q(s, a))

    The gradient reaches the actor through both terms (Q through the action); α is
    held constant. See Haarnoja et al., Soft Actor-Critic Algorithms and
    Applications: https://arxiv.org/abs/1812.05905

    Args:
      log_probs: log π(a|s) of the sampled actions, ``[*B]``.
      q_values: Q(s, a) of the same actions (e.g. min over the critics), ``[*B]``.
      alpha: temperature α, scalar.

    Returns:
      Scalar loss.
    """
    log_probs, q_values = as_float(log_probs, "log_probs"), as_float(q_values, "q_values")
    check_same_shape({"log_probs": log_probs, "q_values": q_values})
    return jnp.mean(_sg(alpha) * log_probs - q_values)


def sac_soft_target(
    r_t,
    discount_t,
    next_q1,
    next_q2,
    next_log_probs,
    alpha,
    stop_target_gradients: bool = True,
) -> jax.Array:
    """Clipped double-Q soft Bellman target of SAC.

        y = rₜ + discountₜ · (min(Q₁(s', a'), Q₂(s', a')) − α · log π(a'|s')),  a' ~ π(·|s')

    ``discount_t = γ·(1 − terminated)``. See Haarnoja et al., Soft Actor-Critic
    Algorithms and Applications: https://arxiv.org/abs/1812.05905

    Args:
      r_t: rewards, ``[*B]`` or scalar.
      discount_t: ``γ·(1 − terminated)``, ``[*B]`` or scalar.
      next_q1: first target critic at (s', a'), ``[*B]``.
      next_q2: second target critic at (s', a'), ``[*B]``.
      next_log_probs: log π(a'|s'), ``[*B]``.
      alpha: temperature α, scalar.
      stop_target_gradients: if True, no gradient flows through the target.

    Returns:
      Targets, ``[*B]``.
    """
    next_q1, next_q2 = as_float(next_q1, "next_q1"), as_float(next_q2, "next_q2")
    next_log_probs = as_float(next_log_probs, "next_log_probs")
    r_t, discount_t = as_float(r_t, "r_t"), as_float(discount_t, "discount_t")
    check_same_shape({"next_q1": next_q1, "next_q2": next_q2, "next_log_probs": next_log_probs})
    _check_like(r_t, next_q1.shape, "r_t", "next_q1")
    _check_like(discount_t, next_q1.shape, "discount_t", "next_q1")
    soft_v = jnp.minimum(next_q1, next_q2) - alpha * next_log_probs
    target = r_t + discount_t * soft_v
    return _sg(target) if stop_target_gradients else target


def sac_alpha_loss(log_alpha, log_probs, target_entropy) -> jax.Array:
    """SAC temperature loss on log α (automatic entropy tuning).

        L = −mean(log α · (log π(a|s) + H̄))    (the bracket held constant)

    Minimising raises α when the entropy −log π is below the target H̄.
    See Haarnoja et al., Soft Actor-Critic Algorithms and Applications, §5:
    https://arxiv.org/abs/1812.05905

    Args:
      log_alpha: log α, scalar.
      log_probs: log π(a|s) of sampled actions, ``[*B]``.
      target_entropy: H̄, scalar (commonly −dim(action space)).

    Returns:
      Scalar loss.
    """
    log_alpha, log_probs = as_float(log_alpha, "log_alpha"), as_float(log_probs, "log_probs")
    return -jnp.mean(log_alpha * _sg(log_probs + target_entropy))


def _probs_times(probs, x):
    """π(a)·x(a) with 0 where π(a) = 0, even if x(a) = −∞ (masked actions), gradient included."""
    return probs * jnp.where(probs > 0, x, 0.0)


def _check_discrete(probs, log_probs, **others):
    probs, log_probs = as_float(probs, "probs"), as_float(log_probs, "log_probs")
    check_min_rank(probs, 1, "probs")
    arrays = {"probs": probs, "log_probs": log_probs}
    arrays.update({k: as_float(v, k) for k, v in others.items()})
    check_same_shape(arrays)
    return arrays.values()


def sac_discrete_actor_loss(probs, log_probs, q_values, alpha) -> jax.Array:
    """Discrete SAC policy loss, computed exactly over the actions.

        L = mean_B Σₐ π(a|s) (α · log π(a|s) − Q(s, a))

    Q and α are held constant. See Christodoulou, Soft Actor-Critic for Discrete
    Action Settings: https://arxiv.org/abs/1910.07207

    Args:
      probs: π(·|s), ``[*B, A]``.
      log_probs: log π(·|s), ``[*B, A]`` (−∞ allowed where π = 0).
      q_values: Q(s, ·) (e.g. min over the critics), ``[*B, A]``.
      alpha: temperature α, scalar.

    Returns:
      Scalar loss.
    """
    probs, log_probs, q_values = _check_discrete(probs, log_probs, q_values=q_values)
    per_action = _probs_times(probs, _sg(alpha) * log_probs - _sg(q_values))
    return jnp.mean(jnp.sum(per_action, axis=-1))


def sac_discrete_soft_value(
    probs, log_probs, q1, q2, alpha, stop_target_gradients: bool = True
) -> jax.Array:
    """Discrete SAC soft state value, exact over the actions.

        V(s) = Σₐ π(a|s) (min(Q₁(s, a), Q₂(s, a)) − α · log π(a|s))

    The bootstrap of the critic target: y = r + γ(1 − terminated)·V(s').
    See Christodoulou, Soft Actor-Critic for Discrete Action Settings:
    https://arxiv.org/abs/1910.07207

    Args:
      probs: π(·|s), ``[*B, A]``.
      log_probs: log π(·|s), ``[*B, A]`` (−∞ allowed where π = 0).
      q1: first critic, ``[*B, A]``.
      q2: second critic, ``[*B, A]``.
      alpha: temperature α, scalar.
      stop_target_gradients: if True, no gradient flows through the value.

    Returns:
      Soft values, ``[*B]``.
    """
    probs, log_probs, q1, q2 = _check_discrete(probs, log_probs, q1=q1, q2=q2)
    value = jnp.sum(_probs_times(probs, jnp.minimum(q1, q2) - alpha * log_probs), axis=-1)
    return _sg(value) if stop_target_gradients else value


def sac_discrete_alpha_loss(log_alpha, probs, log_probs, target_entropy) -> jax.Array:
    """Discrete SAC temperature loss on log α, exact over the actions.

        L = −mean_B [log α · Σₐ π(a|s) (log π(a|s) + H̄)]    (the sum held constant)

    See Christodoulou, Soft Actor-Critic for Discrete Action Settings, eq. 11:
    https://arxiv.org/abs/1910.07207

    Args:
      log_alpha: log α, scalar.
      probs: π(·|s), ``[*B, A]``.
      log_probs: log π(·|s), ``[*B, A]`` (−∞ allowed where π = 0).
      target_entropy: H̄, scalar (e.g. 0.98·log A, or a fraction of it).

    Returns:
      Scalar loss.
    """
    probs, log_probs = _check_discrete(probs, log_probs)
    log_alpha = as_float(log_alpha, "log_alpha")
    gap = jnp.sum(_probs_times(probs, log_probs + target_entropy), axis=-1)
    return -jnp.mean(log_alpha * _sg(gap))
