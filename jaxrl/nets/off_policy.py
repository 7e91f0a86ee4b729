"""Off-policy networks: Q-networks (plain and dueling), continuous critics (single and
twin), a deterministic actor, and the tanh-squashed Gaussian actor of SAC.

Shapes: ``*N`` any leading batch axes, ``A`` the number of discrete actions or
the action dimension, ``[low, high]`` the action bounds (scalars or ``[A]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.nets.distributions import DiagGaussian
from jaxrl.nets.torsos import (
    MLP,
    POLICY_GAIN,
    VALUE_GAIN,
    check_activation,
    check_torso,
    dense,
    make_torso,
)

__all__ = [
    "ContinuousQ",
    "DeterministicActor",
    "QNetwork",
    "SquashedGaussianActor",
    "SquashedSample",
    "TwinQ",
    "TwinQValues",
    "sample_squashed",
    "squash_bijector",
    "squashed_mode",
]


class QNetwork(nn.Module):
    """Action values Q(s, ·): ``__call__(obs [*N, ...]) -> [*N, A]``.

    With ``dueling=True`` the torso feeds a state-value head V(s) and an advantage
    head A(s, a), combined as

        Q(s, a) = V(s) + A(s, a) − (1/|A|)·Σₐ' A(s, a')

    so the mean over actions of Q is V. The two streams are stored in the
    ``"intermediates"`` collection (``apply(..., mutable=["intermediates"])``).
    See Wang et al. 2016, Dueling Network Architectures for Deep Reinforcement
    Learning: https://arxiv.org/abs/1511.06581
    """

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    dueling: bool = False
    torso: str = "mlp"

    def __post_init__(self):
        check_activation(self.activation)
        check_torso(self.torso)
        super().__post_init__()

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = make_torso(self.torso, self.hidden_sizes, self.activation)(obs)
        if not self.dueling:
            return dense(self.num_actions, VALUE_GAIN)(h)
        value = dense(1, VALUE_GAIN, name="value_head")(h)
        advantage = dense(self.num_actions, VALUE_GAIN, name="advantage_head")(h)
        self.sow("intermediates", "value", value[..., 0])
        self.sow("intermediates", "advantage", advantage)
        return value + advantage - jnp.mean(advantage, axis=-1, keepdims=True)


class ContinuousQ(nn.Module):
    """Q(s, a) for continuous actions: ``__call__(obs [*N, D], action [*N, A]) -> [*N]``.

    The observation and action are concatenated and fed to an MLP (head gain 1.0).
    Their batch axes broadcast against each other.
    """

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"

    def __post_init__(self):
        check_activation(self.activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        obs = jnp.asarray(obs, jnp.float32)
        action = jnp.asarray(action, jnp.float32)
        batch = jnp.broadcast_shapes(obs.shape[:-1], action.shape[:-1])
        x = jnp.concatenate(
            [
                jnp.broadcast_to(obs, (*batch, obs.shape[-1])),
                jnp.broadcast_to(action, (*batch, action.shape[-1])),
            ],
            axis=-1,
        )
        h = MLP(self.hidden_sizes, self.activation)(x)
        return dense(1, VALUE_GAIN)(h)[..., 0]


class TwinQValues(NamedTuple):
    """Output of ``TwinQ``."""

    q1: jax.Array  # [*N]
    q2: jax.Array  # [*N]

    def minimum(self) -> jax.Array:
        """min(q1, q2) [*N], the clipped double-Q estimate of TD3 and SAC."""
        return jnp.minimum(self.q1, self.q2)


class TwinQ(nn.Module):
    """Two independent ``ContinuousQ`` critics (for clipped double Q-learning).

    ``__call__(obs, action) -> TwinQValues(q1 [*N], q2 [*N])``. The two critics'
    parameters are stacked on a leading axis of size 2 (``nn.vmap``), under the
    name ``"critics"``. See Fujimoto et al. 2018, Addressing Function Approximation
    Error in Actor-Critic Methods: https://arxiv.org/abs/1802.09477
    """

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> TwinQValues:
        critics = nn.vmap(
            ContinuousQ,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=2,
        )(self.hidden_sizes, self.activation, name="critics")
        q = critics(obs, action)
        return TwinQValues(q1=q[0], q2=q[1])


def _bounds(low, high) -> tuple[jax.Array, jax.Array]:
    return jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)


class DeterministicActor(nn.Module):
    """μ(s) = low + (tanh(f(s)) + 1)·(high − low)/2: ``__call__(obs) -> [*N, A]`` in
    [low, high] (DDPG, TD3; head gain 0.01, so the initial actions sit near the
    middle of the box)."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    low: float | Sequence[float] = -1.0
    high: float | Sequence[float] = 1.0
    activation: str = "relu"

    def __post_init__(self):
        check_activation(self.activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = MLP(self.hidden_sizes, self.activation)(obs)
        u = jnp.tanh(dense(self.action_dim, POLICY_GAIN)(h))
        low, high = _bounds(self.low, self.high)
        return low + (u + 1.0) * (high - low) / 2.0


def squash_bijector(low=-1.0, high=1.0, shape=None) -> distrax.Bijector:
    """a = c + s·tanh(u) with c = (high + low)/2, s = (high − low)/2, acting on the last
    axis as one event (``distrax.Block(…, 1)``): log|det J| = Σᵢ [log s + log(1 − tanh²uᵢ)].

    For the default bounds [−1, 1] it is ``Block(Tanh(), 1)``. ``shape`` (the shape
    [*N, A] of the pre-squash samples) broadcasts c and s to it, so that a
    distribution returned from ``jax.vmap`` batches them like its other parameters.
    """
    if isinstance(low, int | float) and isinstance(high, int | float) and (low, high) == (-1, 1):
        return distrax.Block(distrax.Tanh(), 1)
    low, high = _bounds(low, high)
    shift, scale = (high + low) / 2.0, (high - low) / 2.0
    if shape is not None:
        shift, scale = jnp.broadcast_to(shift, shape), jnp.broadcast_to(scale, shape)
    affine = distrax.ScalarAffine(shift=shift, scale=scale)
    return distrax.Block(distrax.Chain([affine, distrax.Tanh()]), 1)


class SquashedGaussianActor(nn.Module):
    """The tanh-squashed diagonal Gaussian policy of SAC.

        u ~ N(μ(s), diag σ(s)²),  a = c + s·tanh(u)  (c, s from [low, high])
        log π(a|s) = Σᵢ [log N(uᵢ; μᵢ, σᵢ) − log(1 − tanh²uᵢ) − log s]

    log σ is squashed smoothly into [log_std_min, log_std_max]:
    log σ = min + (max − min)·(tanh(raw) + 1)/2.

    ``__call__(obs) -> distrax.Transformed`` with event shape [A]. Use
    ``dist.sample_and_log_prob(seed=key)`` (it stays on the forward path and is
    stable at the bounds), ``squashed_mode(dist)`` for the deterministic
    evaluation action, and ``dist.distribution.loc`` / ``.scale_diag`` for μ, σ.
    See Haarnoja et al. 2018, Soft Actor-Critic, appendix C:
    https://arxiv.org/abs/1801.01290
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    low: float | Sequence[float] = -1.0
    high: float | Sequence[float] = 1.0
    activation: str = "relu"

    def __post_init__(self):
        check_activation(self.activation)
        if not self.log_std_min < self.log_std_max:
            raise ValueError(
                f"SquashedGaussianActor: need log_std_min < log_std_max, got "
                f"{self.log_std_min!r} and {self.log_std_max!r}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, obs: jax.Array) -> distrax.Transformed:
        h = MLP(self.hidden_sizes, self.activation)(obs)
        mean = dense(self.action_dim, POLICY_GAIN, name="mean")(h)
        raw = dense(self.action_dim, POLICY_GAIN, name="log_std")(h)
        span = self.log_std_max - self.log_std_min
        log_std = self.log_std_min + span * (jnp.tanh(raw) + 1.0) / 2.0
        base = DiagGaussian(mean, jnp.exp(log_std))
        return distrax.Transformed(base, squash_bijector(self.low, self.high, mean.shape))


def squashed_mode(dist: distrax.Transformed) -> jax.Array:
    """The deterministic action c + s·tanh(μ) [*N, A] of a squashed Gaussian (the base
    mean pushed through the bijector; used for evaluation)."""
    return dist.bijector.forward(dist.distribution.mode())


class SquashedSample(NamedTuple):
    """Output of ``sample_squashed``."""

    action: jax.Array  # [*N, A] in [low, high]
    log_prob: jax.Array  # [*N]


def sample_squashed(
    key: jax.Array, mean: jax.Array, log_std: jax.Array, low=-1.0, high=1.0
) -> SquashedSample:
    """Samples a = c + s·tanh(u), u ~ N(mean, diag exp(log_std)²), with its log-density.

        log π(a) = Σᵢ [log N(uᵢ; meanᵢ, σᵢ) − log(1 − tanh²uᵢ) − log s]
        log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u))   (stable for large |u|)

    Args:
      key: PRNG key.
      mean: [*N, A] Gaussian means.
      log_std: [*N, A] Gaussian log standard deviations.
      low: lower action bound(s), scalar or [A].
      high: upper action bound(s), scalar or [A].

    Returns:
      SquashedSample(action [*N, A], log_prob [*N]).
    """
    mean = jnp.asarray(mean, jnp.float32)
    log_std = jnp.broadcast_to(jnp.asarray(log_std, jnp.float32), mean.shape)
    eps = jax.random.normal(key, mean.shape, jnp.float32)
    u = mean + jnp.exp(log_std) * eps
    log_normal = -0.5 * eps**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    log_det_tanh = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    low, high = _bounds(low, high)
    scale = jnp.broadcast_to((high - low) / 2.0, mean.shape)
    action = (high + low) / 2.0 + scale * jnp.tanh(u)
    log_prob = jnp.sum(log_normal - log_det_tanh - jnp.log(scale), axis=-1)
    return SquashedSample(action=action, log_prob=log_prob)
