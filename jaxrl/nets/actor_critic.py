"""On-policy networks: categorical and Gaussian actors, value critic, ActorCritic.

Shapes: ``*N`` any leading batch axes, ``A`` the number of discrete actions or
the action dimension.
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
    POLICY_GAIN,
    VALUE_GAIN,
    CheckedModule,
    dense,
    make_torso,
)

__all__ = [
    "ActorCritic",
    "CategoricalActor",
    "GaussianActor",
    "PolicyValue",
    "ValueCritic",
]


class CategoricalActor(CheckedModule):
    """π(a|s) = softmax(logits(s)): ``__call__(obs [*N, ...]) -> distrax.Categorical``
    with logits [*N, A] (head gain 0.01)."""

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    torso: str = "mlp"

    @nn.compact
    def __call__(self, obs: jax.Array) -> distrax.Categorical:
        h = make_torso(self.torso, self.hidden_sizes, self.activation)(obs)
        return distrax.Categorical(logits=dense(self.num_actions, POLICY_GAIN)(h))


def _gaussian(
    h: jax.Array, module: nn.Module, action_dim: int, state_dependent_std: bool, log_std_init
):
    """Diagonal Gaussian head (mean gain 0.01). A state-dependent log σ is a second
    head, offset by ``log_std_init`` and clipped to [−20, 2]; otherwise log σ is a
    parameter vector ``log_std`` [A] initialised to ``log_std_init``."""
    mean = dense(action_dim, POLICY_GAIN, name="mean")(h)
    if state_dependent_std:
        log_std = dense(action_dim, POLICY_GAIN, name="log_std_head")(h) + log_std_init
        log_std = jnp.clip(log_std, -20.0, 2.0)
    else:
        log_std = module.param(
            "log_std", nn.initializers.constant(log_std_init), (action_dim,), jnp.float32
        )
        log_std = jnp.broadcast_to(log_std, mean.shape)
    return DiagGaussian(mean, jnp.exp(log_std))


class GaussianActor(CheckedModule):
    """π(a|s) = N(μ(s), diag σ²): ``__call__(obs) -> DiagGaussian``
    with event shape [A] (actions are not squashed: clip them or use
    ``jaxrl.envs.ClipAction``)."""

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    state_dependent_std: bool = False
    log_std_init: float = 0.0
    torso: str = "mlp"

    @nn.compact
    def __call__(self, obs: jax.Array) -> DiagGaussian:
        h = make_torso(self.torso, self.hidden_sizes, self.activation)(obs)
        return _gaussian(h, self, self.action_dim, self.state_dependent_std, self.log_std_init)


class ValueCritic(CheckedModule):
    """V(s): ``__call__(obs [*N, ...]) -> [*N]`` (head gain 1.0)."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    torso: str = "mlp"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = make_torso(self.torso, self.hidden_sizes, self.activation)(obs)
        return dense(1, VALUE_GAIN)(h)[..., 0]


class PolicyValue(NamedTuple):
    """Output of ``ActorCritic``."""

    distribution: distrax.Distribution  # batch shape [*N]
    value: jax.Array  # [*N]


class ActorCritic(CheckedModule):
    """Policy and value networks for on-policy agents (PPO, A2C, TRPO).

    ``__call__(obs) -> PolicyValue(distribution, value)`` (unpacks as
    ``dist, value = ...``); ``policy(obs) -> distribution`` and
    ``value(obs) -> [*N]`` compute one side only:
    ``net.apply(params, obs, method=ActorCritic.value)``. Initialise with
    ``net.init(key, obs)`` (which creates both sides).

    Attributes:
      action_dim: number of actions (discrete) or action dimension (continuous);
        ``jaxrl.envs.action_info(env, params).size``.
      discrete: Categorical policy if True, diagonal Gaussian otherwise.
      hidden_sizes: dense layer sizes of each torso (after the convolution for "cnn").
      activation: one of ``ACTIVATIONS``.
      torso: "mlp" or "cnn".
      shared_torso: one torso feeds both heads (else actor and critic have their own).
      state_dependent_std: Gaussian log σ from a head instead of a parameter vector.
      log_std_init: initial log σ of the Gaussian policy.
    """

    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    torso: str = "mlp"
    shared_torso: bool = False
    state_dependent_std: bool = False
    log_std_init: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.action_dim, int) and self.action_dim >= 1):
            raise ValueError(
                f"ActorCritic: action_dim must be an int >= 1, got {self.action_dim!r}"
            )
        super().__post_init__()

    def setup(self):
        self.actor_torso = make_torso(self.torso, self.hidden_sizes, self.activation)
        if not self.shared_torso:
            self.critic_torso = make_torso(self.torso, self.hidden_sizes, self.activation)
        self.value_head = dense(1, VALUE_GAIN)
        self.policy_head = dense(self.action_dim, POLICY_GAIN)
        if not self.discrete:
            if self.state_dependent_std:
                self.log_std_head = dense(self.action_dim, POLICY_GAIN)
            else:
                self.log_std = self.param(
                    "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
                )

    def _distribution(self, h: jax.Array) -> distrax.Distribution:
        out = self.policy_head(h)
        if self.discrete:
            return distrax.Categorical(logits=out)
        if self.state_dependent_std:
            log_std = jnp.clip(self.log_std_head(h) + self.log_std_init, -20.0, 2.0)
        else:
            log_std = jnp.broadcast_to(self.log_std, out.shape)
        return DiagGaussian(out, jnp.exp(log_std))

    def _value(self, h: jax.Array) -> jax.Array:
        return self.value_head(h)[..., 0]

    def __call__(self, obs: jax.Array) -> PolicyValue:
        h = self.actor_torso(obs)
        hv = h if self.shared_torso else self.critic_torso(obs)
        return PolicyValue(self._distribution(h), self._value(hv))

    def policy(self, obs: jax.Array) -> distrax.Distribution:
        """π(·|obs) only."""
        return self._distribution(self.actor_torso(obs))

    def value(self, obs: jax.Array) -> jax.Array:
        """V(obs) only: [*N]."""
        torso = self.actor_torso if self.shared_torso else self.critic_torso
        return self._value(torso(obs))
