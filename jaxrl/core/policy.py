"""Policy losses: policy gradient, actor-critic, PPO, trust-region pieces, SAC and DPG.

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
import numpy as np

from jaxrl.core._checks import as_float, check_min_rank, check_same_shape
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
    "sac_actor_loss",
    "sac_soft_target",
    "sac_alpha_loss",
    "sac_discrete_actor_loss",
    "sac_discrete_soft_value",
    "sac_discrete_alpha_loss",
    "dpg_actor_loss",
    "td3_target_actions",
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


def _check_eps(value, name: str, upper: float | None = None) -> None:
    """Checks a Python/NumPy hyperparameter; traced values (sweeps under vmap) pass through."""
    if isinstance(value, (int, float, np.number, np.ndarray)):
        arr = np.asarray(value)
        if not np.all(arr >= 0) or (upper is not None and not np.all(arr <= upper)):
            allowed = ">= 0" if upper is None else f"in [0, {upper}]"
            raise ValueError(f"`{name}` must be {allowed}, got {value}")


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
    Reinforcement Learning: https://arxiv.org/abs/1602.01783

    Args:
      log_probs: log π(a|s) of the taken actions, ``[*B]``.
      advantages: advantages, ``[*B]``.
      values: value predictions V(s), ``[*B]``.
      targets: value targets G, ``[*B]``.
      entropy: policy entropies, ``[*B]``.
      value_coef: c_v, scalar.
      entropy_coef: c_H, scalar.
      mask: optional weights, ``[*B]``.

    Returns:
      ``(loss, {"policy_loss", "value_loss", "entropy"})``, scalars.
    """
    log_probs, advantages = _logs_and_adv(log_probs, advantages)
    values, targets = as_float(values, "values"), as_float(targets, "targets")
    entropy = as_float(entropy, "entropy")
    check_same_shape({"log_probs": log_probs, "values": values, "entropy": entropy})
    _check_like(targets, values.shape, "targets", "values")
    policy_loss = -masked_mean(log_probs * advantages, mask)
    value_loss = masked_mean(0.5 * jnp.square(values - _sg(targets)), mask)
    mean_entropy = masked_mean(entropy, mask)
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
