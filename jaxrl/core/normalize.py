"""Running mean and variance of observations, and return-based reward scaling.

Shapes: ``S`` is the shape of one sample (e.g. an observation ``[D]``), ``*N``
any number of leading batch axes (time, environments); ``B`` is the number of
environments for the reward scaler.

Statistics are merged a whole batch at a time with the parallel form of
Welford's algorithm, exact for any split of the data into batches. A small
initial pseudo-count (``eps_count``, default 1e-4) with mean 0 and variance 1
keeps the variance defined before the first update, as in common PPO
implementations; with ``eps_count=0`` the statistics equal the sample mean and
(population) variance of all data seen.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core._checks import as_float, check_rank, check_same_shape

__all__ = [
    "RewardScalerState",
    "RunningStats",
    "denormalize",
    "normalize",
    "reward_scaler_init",
    "reward_scaler_update",
    "running_stats_init",
    "running_stats_update",
]


class RunningStats(NamedTuple):
    """Mean, variance and (pseudo-)count of all samples merged so far."""

    mean: jax.Array  # [*S]
    var: jax.Array  # [*S] population variance (divided by count, not count − 1)
    count: jax.Array  # [] float32, number of samples (+ eps_count)


class RewardScalerState(NamedTuple):
    """State of the return-based reward scaler."""

    returns: jax.Array  # [B] running discounted return of the current episode per env
    stats: RunningStats  # statistics of the running returns, S = ()


def _check_nonneg(value, name: str) -> None:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not float(value) >= 0.0:
            raise ValueError(f"`{name}` must be >= 0, got {value!r}")


def running_stats_init(shape, eps_count: float = 1e-4, dtype=jnp.float32) -> RunningStats:
    """Statistics before any data: mean 0, variance 1, count ``eps_count``.

    Args:
      shape: the shape S of one sample, e.g. ``(obs_dim,)`` or ``()``.
      eps_count: initial pseudo-count ≥ 0 given to the prior (mean 0, var 1).
      dtype: float dtype of mean and var.

    Returns:
      RunningStats(mean [*S], var [*S], count []).
    """
    _check_nonneg(eps_count, "eps_count")
    shape = tuple(shape)
    return RunningStats(
        mean=jnp.zeros(shape, dtype),
        var=jnp.ones(shape, dtype),
        count=jnp.asarray(eps_count, jnp.float32),
    )


def running_stats_update(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merges a batch of samples into the running statistics (Chan et al.).

    With the batch's n samples, mean m_b and population variance v_b:
        δ = m_b − μ,  n' = n_a + n,  μ' = μ + δ·n / n'
        σ²' = (σ²·n_a + v_b·n + δ²·n_a·n / n') / n'

    See Chan, Golub & LeVeque 1979, Updating formulae and a pairwise algorithm
    for computing sample variances; the parallel algorithm in
    https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance#Parallel_algorithm

    Args:
      stats: RunningStats with mean/var [*S].
      batch: samples [*N, *S]: any leading batch axes (none means one sample),
        trailing axes equal to S.

    Returns:
      RunningStats merged with all n = prod(N) samples.
    """
    batch = as_float(batch, "batch")
    shape = stats.mean.shape
    k = len(shape)
    if batch.ndim < k or batch.shape[batch.ndim - k :] != shape:
        raise ValueError(
            f"`batch` has shape {batch.shape}; its trailing axes must equal the shape {shape} "
            "of the running statistics"
        )
    axes = tuple(range(batch.ndim - k))
    n = int(np.prod(batch.shape[: batch.ndim - k]))
    if n == 0:
        raise ValueError(f"`batch` of shape {batch.shape} holds no samples")
    batch = batch.astype(stats.mean.dtype)
    batch_mean = jnp.mean(batch, axis=axes)
    batch_var = jnp.var(batch, axis=axes)
    n = jnp.float32(n)
    total = stats.count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * (n / total)
    m2 = stats.var * stats.count + batch_var * n + jnp.square(delta) * (stats.count * n / total)
    return RunningStats(mean=mean, var=m2 / total, count=total)


def _check_trailing(stats: RunningStats, x, name: str) -> None:
    shape = stats.mean.shape
    k = len(shape)
    if np.ndim(x) < k or np.shape(x)[np.ndim(x) - k :] != shape:
        raise ValueError(
            f"`{name}` has shape {np.shape(x)}; its trailing axes must equal the shape {shape} "
            "of the running statistics"
        )


def normalize(stats: RunningStats, x: jax.Array, eps: float = 1e-8, clip=None) -> jax.Array:
    """Standardises x with the running statistics, optionally clipping.

        x̂ = clip((x − μ) / √(σ² + eps), −clip, clip)

    Args:
      stats: RunningStats with mean/var [*S].
      x: values [*N, *S].
      eps: added to the variance (≥ 0).
      clip: bound c > 0 on |x̂|, or None.

    Returns:
      x̂ [*N, *S], the dtype of x (float32 for integer input).
    """
    _check_nonneg(eps, "eps")
    _check_nonneg(clip, "clip")
    x = as_float(x, "x")
    _check_trailing(stats, x, "x")
    out = (x - stats.mean) / jnp.sqrt(stats.var + eps)
    if clip is not None:
        out = jnp.clip(out, -clip, clip)
    return out.astype(x.dtype)


def denormalize(stats: RunningStats, x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Inverse of :func:`normalize` (without clipping): x = x̂·√(σ² + eps) + μ.

    Args:
      stats: RunningStats with mean/var [*S].
      x: standardised values [*N, *S].
      eps: the eps used when normalising.

    Returns:
      values [*N, *S], the dtype of x.
    """
    _check_nonneg(eps, "eps")
    x = as_float(x, "x")
    _check_trailing(stats, x, "x")
    return (x * jnp.sqrt(stats.var + eps) + stats.mean).astype(x.dtype)


def reward_scaler_init(num_envs: int, eps_count: float = 1e-4) -> RewardScalerState:
    """Zero running returns and fresh scalar statistics.

    Args:
      num_envs: number of environments B (a Python int ≥ 1).
      eps_count: initial pseudo-count of the return statistics.

    Returns:
      RewardScalerState(returns [B], stats with S = ()).
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral) or num_envs < 1:
        raise ValueError(f"`num_envs` must be an int >= 1, got {num_envs!r}")
    return RewardScalerState(
        returns=jnp.zeros((num_envs,), jnp.float32),
        stats=running_stats_init((), eps_count=eps_count),
    )


def reward_scaler_update(
    state: RewardScalerState, rewards: jax.Array, done: jax.Array, gamma, eps=1e-8, clip=None
) -> tuple[jax.Array, RewardScalerState]:
    """Divides rewards by the running std of the discounted return.

        Gᵢ ← γ·Gᵢ + rᵢ;  merge G into the statistics;  r̃ᵢ = clip(rᵢ / √(Var[G] + eps), ±clip);
        then Gᵢ ← 0 where doneᵢ

    The return accumulates within an episode and restarts after the step that
    ended it (``done = terminated or truncated``: it is a scale statistic, not
    a value target, so truncation cuts it too). Rewards are scaled, not
    centred, so their sign is kept. This is the reward scaling of common PPO
    implementations; see Engstrom et al. 2020, Implementation Matters in Deep
    Policy Gradients: https://arxiv.org/abs/2005.12729

    Args:
      state: RewardScalerState with returns [B].
      rewards: rewards of one step [B].
      done: episode ended at this step [B] (bool or 0/1).
      gamma: discount γ in [0, 1] (scalar).
      eps: added to the variance.
      clip: bound on |r̃|, or None.

    Returns:
      ``(scaled_rewards [B], new_state)``.
    """
    if isinstance(gamma, numbers.Real) and not isinstance(gamma, bool):
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"`gamma` must lie in [0, 1], got {gamma!r}")
    _check_nonneg(eps, "eps")
    _check_nonneg(clip, "clip")
    rewards = as_float(rewards, "rewards")
    check_rank(rewards, 1, "rewards")
    check_same_shape({"rewards": rewards, "done": done, "state.returns": state.returns})
    returns = state.returns * gamma + rewards.astype(state.returns.dtype)
    stats = running_stats_update(state.stats, returns)
    scaled = rewards / jnp.sqrt(stats.var + eps).astype(rewards.dtype)
    if clip is not None:
        scaled = jnp.clip(scaled, -clip, clip)
    returns = jnp.where(jnp.asarray(done).astype(bool), 0.0, returns).astype(returns.dtype)
    return scaled.astype(rewards.dtype), RewardScalerState(returns=returns, stats=stats)
