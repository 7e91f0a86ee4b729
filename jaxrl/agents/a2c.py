"""Advantage actor-critic (A2C): synchronous environments, one gradient step per rollout.

    L = −mean(log π(aₜ|sₜ)·Âₜ) + c_v·mean(½(V(sₜ) − Gₜ)²) − c_e·mean(H[π(·|sₜ)])

A2C is the synchronous form of A3C: ``num_envs`` environments step together
for ``num_steps`` steps, each step's advantage is an n-step return minus the
value (n = ``num_steps`` by default: every step bootstraps from the rollout's
end, the forward view of the A3C paper) or GAE(γ, λ), and the rollout feeds
one gradient step of RMSprop (as in the paper) or Adam.

See Mnih et al., Asynchronous Methods for Deep Reinforcement Learning (2016):
https://arxiv.org/abs/1602.01783, and the OpenAI Baselines note on A2C:
https://openai.com/index/openai-baselines-acktr-a2c/

Shapes: ``T`` = ``num_steps``, ``B`` = ``num_envs``.
"""

from __future__ import annotations

import functools

import jax
import optax

from jaxrl._config import config, one_of, positive, probability, require, static
from jaxrl.agents import on_policy
from jaxrl.core.policy import actor_critic_loss

__all__ = [
    "A2CState",
    "Config",
    "a2c_loss",
    "make_advantage_fn",
    "make_batch",
    "make_agent",
    "make_network",
    "make_transform",
    "make_train",
]


def _non_negative_int(v) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
    return None if ok else "an integer >= 0"


@config
class Config(on_policy.OnPolicyConfig):
    """A2C settings (defaults: Stable-Baselines3's A2C). Static fields fix shapes."""

    num_envs: int = static(8, "environments stepped as one batch")
    num_steps: int = static(5, "rollout length T per update")
    shared_torso: bool = static(False, "actor and critic share the torso")
    advantage: str = static("nstep", "nstep (n-step returns − V) or gae")
    n_step: int = static(0, "n of the n-step returns; 0 means num_steps")
    optimizer: str = static("rmsprop", "rmsprop or adam")
    normalize_advantages: bool = static(False, "standardise advantages per rollout")
    anneal_lr: bool = static(False, "decay the learning rate linearly to 0")
    learning_rate: float = 7e-4
    gae_lambda: float = 1.0
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    rmsprop_decay: float = 0.99
    optimizer_eps: float = 1e-5

    def validate(self):
        require(self, "n_step", _non_negative_int)
        require(self, "advantage", one_of("nstep", "gae"))
        require(self, "optimizer", one_of("rmsprop", "adam"))
        require(self, "optimizer_eps", positive)
        require(self, "rmsprop_decay", probability)
        on_policy.check_config(self)


A2CState = on_policy.OnPolicyState  # one state class for the on-policy family


make_network = on_policy.make_actor_critic  # apply(params, obs) -> (distribution, values)


def make_transform(config: Config) -> optax.GradientTransformation:
    """Clip by global norm, then RMSprop or Adam, without the learning rate.

    RMSprop here is PyTorch's (and Stable-Baselines3's): g / (√v + ε), ε outside
    the square root, v starting at 0. The on-policy loop adds the (traced) rate.
    """
    if config.optimizer == "rmsprop":
        scale = optax.scale_by_rms(
            decay=config.rmsprop_decay, eps=config.optimizer_eps, eps_in_sqrt=False
        )
    else:
        scale = optax.scale_by_adam(eps=config.optimizer_eps)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), scale)


def make_advantage_fn(config: Config) -> on_policy.AdvantageFn:
    """The :data:`~jaxrl.agents.on_policy.AdvantageFn` named by ``config.advantage``."""
    if config.advantage == "gae":
        return on_policy.gae_advantages
    n = config.n_step or config.num_steps
    return functools.partial(on_policy.n_step_advantages, n=n)


def a2c_loss(
    params, apply_fn, batch: dict, config: Config, axis_name: str | None = None
) -> tuple[jax.Array, dict]:
    """The A2C loss on one rollout (``core.actor_critic_loss``).

    Args:
      params: network parameters.
      apply_fn: ``(params, obs) -> (distribution, values)``.
      batch: dict of ``obs [T, B, *obs]``, ``actions [T, B, *act]``, ``advantages [T, B]``
        and ``targets [T, B]``.
      config: the Config (coefficients; ``normalize_advantages`` is read statically).
      axis_name: standardise the advantages over every device of this axis (a split run).

    Returns:
      ``(loss, metrics)`` with policy_loss, value_loss, entropy.
    """
    dist, values = apply_fn(params, batch["obs"])
    return actor_critic_loss(
        dist.log_prob(batch["actions"]),
        on_policy.advantages_of(batch, config, axis_name=axis_name),
        values,
        batch["targets"],
        dist.entropy(),
        config.vf_coef,
        config.ent_coef,
    )


make_batch = on_policy.actor_critic_batch  # the arrays A2C's loss reads, each [T, B, ...]


def _pieces(config: Config, axis_name: str | None):
    network = make_network(config)

    def loss(params, batch, cfg):
        return a2c_loss(params, network.apply, batch, cfg, axis_name)

    return network, on_policy.loss_learner(loss, make_transform, make_batch, axis_name=axis_name)


make_agent, make_train = on_policy.agent_functions("A2C", _pieces, make_advantage_fn)
