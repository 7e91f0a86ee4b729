"""Exploration: ε-greedy and Boltzmann action selection, Gaussian and OU noise, schedules.

Shapes: ``A`` is the number of discrete actions, ``*B`` any batch axes
(environments, seeds); ``q_values`` are ``[*B, A]`` and sampled actions
``[*B]`` int32. Continuous actions are ``[*B, D]`` (or any shape).

Hyperparameters (ε, temperature, noise scale) may be Python numbers, which are
checked before tracing, or arrays broadcastable to ``[*B]`` (per-environment
ε as in Ape-X), which may be traced and swept with ``vmap``.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float, check_broadcastable, check_min_rank

__all__ = [
    "OUState",
    "boltzmann",
    "boltzmann_probs",
    "epsilon_greedy",
    "epsilon_greedy_probs",
    "exponential_schedule",
    "gaussian_noise",
    "linear_schedule",
    "ou_noise_init",
    "ou_noise_reset",
    "ou_noise_step",
]


def _check_real(value, name: str, *, low=None, high=None, low_open=False):
    """Raises ValueError when a concrete Python/NumPy number lies outside [low, high].

    Arrays and tracers pass unchecked: they may be swept hyperparameters under vmap.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return
    v = float(value)
    bad = v != v or (low is not None and (v <= low if low_open else v < low))
    bad = bad or (high is not None and v > high)
    if bad:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(
            f"`{name}` must lie in {'(' if low_open else '['}{lo}, {hi}], got {value!r}"
        )


def _per_row(x, q_values, name: str) -> jax.Array:
    """A scalar or [*B] hyperparameter, given a trailing axis to broadcast against [*B, A]."""
    check_broadcastable(x, q_values.shape[:-1], name, "q_values[..., 0]")
    return as_float(x, name).astype(q_values.dtype)[..., None]


def epsilon_greedy_probs(q_values: jax.Array, epsilon) -> jax.Array:
    """Action probabilities of the ε-greedy policy; ties share the greedy mass.

        π(a) = ε / A + (1 − ε) · 1[a ∈ argmax Q] / |argmax Q|

    Splitting the greedy mass among all maximal actions (rather than taking the
    first argmax) keeps the policy symmetric in the actions, so that, e.g., an
    untrained Q-network with equal outputs explores uniformly.

    See Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), §2.2:
    http://incompleteideas.net/book/the-book-2nd.html

    Args:
      q_values: action values [*B, A].
      epsilon: ε in [0, 1], a scalar or an array broadcastable to [*B].

    Returns:
      probabilities [*B, A], summing to 1 over the last axis.
    """
    _check_real(epsilon, "epsilon", low=0.0, high=1.0)
    q_values = as_float(q_values, "q_values")
    check_min_rank(q_values, 1, "q_values")
    eps = _per_row(epsilon, q_values, "epsilon")
    num_actions = q_values.shape[-1]
    greedy = (q_values == jnp.max(q_values, axis=-1, keepdims=True)).astype(q_values.dtype)
    greedy = greedy / jnp.sum(greedy, axis=-1, keepdims=True)
    return eps / num_actions + (1.0 - eps) * greedy


def epsilon_greedy(key: jax.Array, q_values: jax.Array, epsilon) -> jax.Array:
    """Samples actions from the ε-greedy policy of :func:`epsilon_greedy_probs`.

        a ~ π(·),  π(a) = ε / A + (1 − ε) · 1[a ∈ argmax Q] / |argmax Q|

    Args:
      key: PRNG key.
      q_values: action values [*B, A].
      epsilon: ε in [0, 1], a scalar or an array broadcastable to [*B].

    Returns:
      actions [*B] int32.
    """
    probs = epsilon_greedy_probs(q_values, epsilon)
    return jax.random.categorical(key, jnp.log(probs), axis=-1).astype(jnp.int32)


def boltzmann_probs(q_values: jax.Array, temperature) -> jax.Array:
    """Action probabilities of the Boltzmann (softmax) policy.

        π(a) = exp(Q(a) / τ) / Σ_b exp(Q(b) / τ)

    See Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), §13.1:
    http://incompleteideas.net/book/the-book-2nd.html

    Args:
      q_values: action values [*B, A].
      temperature: τ > 0, a scalar or an array broadcastable to [*B].

    Returns:
      probabilities [*B, A], summing to 1 over the last axis.
    """
    _check_real(temperature, "temperature", low=0.0, low_open=True)
    q_values = as_float(q_values, "q_values")
    check_min_rank(q_values, 1, "q_values")
    return jax.nn.softmax(q_values / _per_row(temperature, q_values, "temperature"), axis=-1)


def boltzmann(key: jax.Array, q_values: jax.Array, temperature) -> jax.Array:
    """Samples actions a ~ softmax(Q / τ) (see :func:`boltzmann_probs`).

    Args:
      key: PRNG key.
      q_values: action values [*B, A].
      temperature: τ > 0, a scalar or an array broadcastable to [*B].

    Returns:
      actions [*B] int32.
    """
    _check_real(temperature, "temperature", low=0.0, low_open=True)
    q_values = as_float(q_values, "q_values")
    check_min_rank(q_values, 1, "q_values")
    logits = q_values / _per_row(temperature, q_values, "temperature")
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def gaussian_noise(
    key: jax.Array, actions: jax.Array, std, low=None, high=None, noise_clip=None
) -> jax.Array:
    """Adds Gaussian noise to continuous actions, optionally clipping noise and result.

        ã = clip(a + clip(σ·ξ, −c, c), low, high),  ξ ~ N(0, I)

    The noise clip c is TD3's target-policy smoothing; without it this is the
    exploration noise of DDPG/TD3. See Fujimoto et al. 2018, Addressing
    Function Approximation Error in Actor-Critic Methods:
    https://arxiv.org/abs/1802.09477

    Args:
      key: PRNG key.
      actions: actions [*B, D] (any shape).
      std: σ ≥ 0, a scalar or an array broadcastable to ``actions``.
      low: lower action bound, broadcastable to ``actions``, or None.
      high: upper action bound, broadcastable to ``actions``, or None.
      noise_clip: c ≥ 0 bounding |σ·ξ| elementwise, or None.

    Returns:
      noisy actions, the shape and dtype of ``actions``.
    """
    _check_real(std, "std", low=0.0)
    _check_real(noise_clip, "noise_clip", low=0.0)
    actions = as_float(actions, "actions")
    check_broadcastable(std, actions.shape, "std", "actions")
    noise = as_float(std, "std").astype(actions.dtype) * jax.random.normal(
        key, actions.shape, actions.dtype
    )
    if noise_clip is not None:
        check_broadcastable(noise_clip, actions.shape, "noise_clip", "actions")
        noise = jnp.clip(noise, -noise_clip, noise_clip)
    out = actions + noise
    for bound, name in ((low, "low"), (high, "high")):
        if bound is not None:
            check_broadcastable(bound, actions.shape, name, "actions")
    if low is not None or high is not None:
        out = jnp.clip(out, low, high)
    return out.astype(actions.dtype)


class OUState(NamedTuple):
    """State of an Ornstein–Uhlenbeck noise process."""

    noise: jax.Array  # [*B, D] current value xₜ of the process


def ou_noise_init(shape, mu=0.0, dtype=jnp.float32) -> OUState:
    """Starts an Ornstein–Uhlenbeck process at its mean.

    Args:
      shape: shape of the noise, e.g. ``(num_envs, action_dim)``.
      mu: long-run mean μ (scalar or broadcastable to ``shape``).
      dtype: float dtype of the noise.

    Returns:
      OUState with ``noise`` = μ, shape ``shape``.
    """
    return OUState(noise=jnp.broadcast_to(jnp.asarray(mu, dtype), tuple(shape)))


def ou_noise_step(
    key: jax.Array, state: OUState, theta=0.15, sigma=0.2, dt=1e-2, mu=0.0
) -> tuple[jax.Array, OUState]:
    """One Euler–Maruyama step of the Ornstein–Uhlenbeck process.

        xₜ₊₁ = xₜ + θ(μ − xₜ)·dt + σ·√dt·ξ,  ξ ~ N(0, I)

    Its stationary law is N(μ, σ²dt / (1 − (1 − θdt)²)) ≈ N(μ, σ²/(2θ)).
    Temporally correlated exploration noise as used by DDPG (Lillicrap et al.
    2015, https://arxiv.org/abs/1509.02971); the process is from Uhlenbeck &
    Ornstein 1930, https://doi.org/10.1103/PhysRev.36.823

    Args:
      key: PRNG key.
      state: OUState with noise [*B, D].
      theta: mean-reversion rate θ ≥ 0.
      sigma: volatility σ ≥ 0.
      dt: time step > 0.
      mu: long-run mean μ (scalar or broadcastable to the noise).

    Returns:
      ``(noise, new_state)``: the new value xₜ₊₁ [*B, D] and the state holding it.
    """
    _check_real(theta, "theta", low=0.0)
    _check_real(sigma, "sigma", low=0.0)
    _check_real(dt, "dt", low=0.0, low_open=True)
    x = state.noise
    dtype = x.dtype
    xi = jax.random.normal(key, x.shape, dtype)
    theta, sigma, dt, mu = (jnp.asarray(v, dtype) for v in (theta, sigma, dt, mu))
    x = x + theta * (mu - x) * dt + sigma * jnp.sqrt(dt) * xi
    return x, OUState(noise=x)


def ou_noise_reset(state: OUState, done: jax.Array, mu=0.0) -> OUState:
    """Resets the noise of the environments whose episode ended to μ.

    Args:
      state: OUState with noise [*B, D].
      done: episode-end flags [*B] (bool or 0/1).
      mu: long-run mean μ.

    Returns:
      OUState with noise [*B, D], equal to μ in the rows where ``done``.
    """
    x = state.noise
    done = jnp.asarray(done).astype(bool)
    if x.shape[: done.ndim] != done.shape:
        raise ValueError(
            f"`done` has shape {done.shape}, which must equal the leading axes of the "
            f"noise of shape {x.shape}"
        )
    done = done.reshape(done.shape + (1,) * (x.ndim - done.ndim))
    return OUState(noise=jnp.where(done, jnp.asarray(mu, x.dtype), x))


def _linear(count, start, end, duration, delay):
    frac = jnp.clip((jnp.asarray(count, jnp.float32) - delay) / duration, 0.0, 1.0)
    return jnp.asarray(start + frac * (end - start), jnp.float32)


def linear_schedule(start, end, duration, delay=0) -> Callable[[jax.Array], jax.Array]:
    """A linear ramp from ``start`` to ``end`` over ``duration`` steps, constant after.

        v(t) = start + (end − start) · clip((t − delay) / duration, 0, 1)

    Args:
      start: value at t ≤ delay.
      end: value at t ≥ delay + duration.
      duration: number of steps of the ramp (> 0).
      delay: steps before the ramp starts (≥ 0), e.g. the replay warm-up.

    Returns:
      A jittable function of the (possibly traced) step count t [*] → float32 [*].
    """
    _check_real(duration, "duration", low=0.0, low_open=True)
    _check_real(delay, "delay", low=0.0)
    return functools.partial(_linear, start=start, end=end, duration=duration, delay=delay)


def _exponential(count, start, end, decay_rate):
    t = jnp.asarray(count, jnp.float32)
    value = start * jnp.power(jnp.float32(decay_rate), t)
    return jnp.clip(value, min(start, end), max(start, end)).astype(jnp.float32)


def exponential_schedule(start, end, decay_rate) -> Callable[[jax.Array], jax.Array]:
    """A geometric decay (or growth) from ``start``, clamped at ``end``.

        v(t) = clip(start · decay_rateᵗ, min(start, end), max(start, end))

    This is the common ``ε ← max(ε_min, ε · decay)`` rule written as a function of
    the step count, so it reaches ``end`` exactly after ⌈log(end/start)/log(decay_rate)⌉
    steps when end > 0. With start < end and decay_rate > 1 it grows instead
    (e.g. the prioritised-replay exponent β).

    Args:
      start: value at t = 0 (a Python number > 0).
      end: the clamp (a Python number ≥ 0).
      decay_rate: factor per step (> 0): < 1 when start > end, > 1 when start < end.

    Returns:
      A jittable function of the (possibly traced) step count t [*] → float32 [*].
    """
    for value, name in ((start, "start"), (end, "end"), (decay_rate, "decay_rate")):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"`{name}` must be a Python number, got {value!r}")
    _check_real(start, "start", low=0.0, low_open=True)
    _check_real(end, "end", low=0.0)
    _check_real(decay_rate, "decay_rate", low=0.0, low_open=True)
    if start > end and decay_rate >= 1:
        raise ValueError(f"`decay_rate` must be < 1 when start > end, got {decay_rate!r}")
    if start < end and decay_rate <= 1:
        raise ValueError(f"`decay_rate` must be > 1 when start < end, got {decay_rate!r}")
    return functools.partial(
        _exponential, start=float(start), end=float(end), decay_rate=float(decay_rate)
    )
