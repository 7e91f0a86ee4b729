"""The acting networks of the on-policy agents: actor-critics and separate policy/value nets.

PPO and A2C use one ``nets.ActorCritic`` (:func:`make_actor_critic`, acting through
:func:`actor_critic_fns`); REINFORCE and TRPO keep the policy and the value network
apart (:class:`PolicyValueNets`), so TRPO's trust region binds the policy alone.

Shapes: ``*N`` any batch of observations, ``*obs`` one observation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl import envs, nets

__all__ = [
    "PolicyValueNets",
    "PolicyValueParams",
    "actor_critic_fns",
    "make_actor",
    "make_actor_critic",
    "make_policy_value",
]


class PolicyValueParams(NamedTuple):
    """Parameters of a separate policy and value network (REINFORCE, TRPO)."""

    policy: Any
    value: Any  # None where there is no value network


class PolicyValueNets(NamedTuple):
    """A policy network and an optional, separate value network (REINFORCE, TRPO).

    Keeping them apart lets TRPO constrain the policy's parameters alone and lets
    REINFORCE run without a critic (then every value is 0).
    """

    actor: Any  # flax module: obs [*N, *obs] -> distrax distribution
    critic: Any  # flax module: obs [*N, *obs] -> [*N], or None

    def init(self, key: jax.Array, obs: jax.Array) -> PolicyValueParams:
        """Initialises both networks on an example ``obs [*N, *obs]``."""
        actor_key, critic_key = jax.random.split(key)
        value = None if self.critic is None else self.critic.init(critic_key, obs)
        return PolicyValueParams(policy=self.actor.init(actor_key, obs), value=value)

    def distribution(self, params: PolicyValueParams, obs: jax.Array):
        """π(·|obs), a distrax distribution with batch shape [*N]."""
        return self.actor.apply(params.policy, obs)

    def value(self, params: PolicyValueParams, obs: jax.Array) -> jax.Array:
        """V(obs) [*N]; zeros without a critic."""
        if self.critic is None:
            # The batch shape comes from the policy (XLA drops the unused forward pass).
            return jnp.zeros(self.distribution(params, obs).batch_shape, jnp.float32)
        return self.critic.apply(params.value, obs)

    def act(self, params: PolicyValueParams, obs: jax.Array, key: jax.Array):
        """The ``policy_fn`` of :func:`collect_rollout`: ``(actions, log_probs, values)``."""
        dist = self.distribution(params, obs)
        actions = dist.sample(seed=key)
        return actions, dist.log_prob(actions), self.value(params, obs)


def make_actor(action_info, hidden_sizes, activation: str, torso: str = "mlp", log_std_init=0.0):
    """A policy network alone for ``action_info``: categorical or diagonal Gaussian."""
    common = dict(hidden_sizes=tuple(hidden_sizes), activation=activation, torso=torso)
    if action_info.discrete:
        return nets.CategoricalActor(num_actions=action_info.size, **common)
    return nets.GaussianActor(action_dim=action_info.size, log_std_init=log_std_init, **common)


def make_policy_value(config, action_info=None, critic: bool = True) -> PolicyValueNets:
    """A policy network and (with ``critic``) a separate value network (REINFORCE, TRPO).

    Reads ``env_id``, ``hidden_sizes``, ``activation``, ``torso`` and ``log_std_init``.
    """
    if action_info is None:
        env, env_params = envs.make(config.env_id)
        action_info = envs.action_info(env, env_params)
    sizes, activation, torso = tuple(config.hidden_sizes), config.activation, config.torso
    actor = make_actor(action_info, sizes, activation, torso, config.log_std_init)
    value = nets.ValueCritic(hidden_sizes=sizes, activation=activation, torso=torso)
    return PolicyValueNets(actor=actor, critic=value if critic else None)


def make_actor_critic(config, action_info=None) -> nets.ActorCritic:
    """The actor-critic network of an on-policy ``config`` (PPO, A2C).

    ``apply(params, obs) -> (distribution, values)``; ``shared_torso`` selects one
    torso for both heads, else each has its own. A Config with ``state_dependent_std``
    and ``log_std_init`` (PPO's) sets the Gaussian policy's σ; others get one learned
    log σ vector starting at 0.
    """
    if action_info is None:
        env, env_params = envs.make(config.env_id)
        action_info = envs.action_info(env, env_params)
    return nets.ActorCritic(
        action_dim=action_info.size,
        discrete=action_info.discrete,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        torso=config.torso,
        shared_torso=config.shared_torso,
        state_dependent_std=getattr(config, "state_dependent_std", False),
        log_std_init=getattr(config, "log_std_init", 0.0),
    )


def actor_critic_fns(network: nets.ActorCritic) -> tuple[Callable, Callable]:
    """``(act_fn, value_fn)`` of :func:`make_update` for an ``nets.ActorCritic``."""

    def act(params, obs, key):
        dist, values = network.apply(params, obs)
        actions = dist.sample(seed=key)
        return actions, dist.log_prob(actions), values

    def value(params, obs):
        return network.apply(params, obs, method=nets.ActorCritic.value)

    return act, value
