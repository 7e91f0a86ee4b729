"""Proximal Policy Optimization (clipped surrogate, GAE, optional value clipping).

Schulman et al., Proximal Policy Optimization Algorithms: https://arxiv.org/abs/1707.06347
Implementation details follow Huang et al., The 37 Implementation Details of PPO:
https://iclr-blog-track.github.io/2022/03/25/ppo-implementation-details/

One update: collect ``num_steps`` steps from ``num_envs`` environments, compute
advantages (GAE by default, any :data:`~jaxrl.agents.on_policy.AdvantageFn`
can be passed in), then ``num_epochs`` passes of ``num_minibatches`` gradient
steps on the clipped objective.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl._config import config, in_range, positive, positive_int, require, static
from jaxrl.agents import on_policy
from jaxrl.core.policy import ppo_clip_loss
from jaxrl.core.value import clipped_value_loss

__all__ = [
    "Config",
    "PPOState",
    "make_agent",
    "make_batch",
    "make_network",
    "make_train",
    "make_transform",
    "ppo_loss",
]


@config
class Config(on_policy.OnPolicyConfig):
    """PPO settings. Static fields fix shapes; the numeric ones can be swept under vmap."""

    num_epochs: int = static(4, "passes over each rollout")
    num_minibatches: int = static(4, "minibatches per pass")
    shared_torso: bool = static(False, "actor and critic share the torso")
    anneal_lr: bool = static(True, "decay the learning rate linearly to 0")
    normalize_advantages: bool = static(True, "standardise advantages per minibatch")
    clip_value: bool = static(True, "clip the value update as in PPO2")
    state_dependent_std: bool = static(
        False, "Gaussian policy: log σ(s) from a head on the actor's torso, not one vector"
    )
    log_std_init: float = static(0.0, "initial log σ of a Gaussian policy")
    learning_rate: float = 2.5e-4
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5

    def validate(self):
        for name in ("clip_eps", "value_clip_eps"):
            require(self, name, positive)
        require(self, "clip_eps", in_range(0, 1, low_open=True, high_open=True))
        require(self, "num_epochs", positive_int)
        on_policy.check_config(self, minibatches="num_minibatches")


PPOState = on_policy.OnPolicyState  # one state class for the on-policy family


make_network = on_policy.make_actor_critic  # apply(params, obs) -> (distribution, values)
make_transform = on_policy.clip_then_adam  # clip by global norm, then Adam (ε = 1e-5)


def ppo_loss(
    params, apply_fn, minibatch: dict, config: Config, axis_name: str | None = None
) -> tuple[jax.Array, dict]:
    """The PPO objective on one minibatch: clipped surrogate + c_v·value loss − c_e·entropy.

    Args:
      params: network parameters.
      apply_fn: ``(params, obs) -> (distribution, values)``.
      minibatch: dict with ``obs``, ``actions``, ``log_probs``, ``values``, ``advantages``,
        ``targets``, each with a leading sample axis.
      config: the PPO Config (coefficients and clip ranges).
      axis_name: the advantages are standardised over the minibatch's share on every
        device of this axis (a split run), or over this minibatch (None).

    Returns:
      ``(loss, metrics)``.
    """
    dist, values = apply_fn(params, minibatch["obs"])
    log_probs = dist.log_prob(minibatch["actions"])
    advantages = on_policy.advantages_of(minibatch, config, axis_name=axis_name)
    policy_loss, pm = ppo_clip_loss(log_probs - minibatch["log_probs"], advantages, config.clip_eps)
    if config.clip_value:
        value_loss = clipped_value_loss(
            values, minibatch["values"], minibatch["targets"], config.value_clip_eps
        ).mean()
    else:
        value_loss = 0.5 * jnp.mean((values - minibatch["targets"]) ** 2)
    entropy = dist.entropy().mean()
    loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    metrics = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": pm["approx_kl"],
        "clip_fraction": pm["clip_fraction"],
    }
    return loss, metrics


make_batch = on_policy.actor_critic_batch  # the arrays PPO's loss reads, each [T, B, ...]


def _pieces(config: Config, axis_name: str | None):
    network = make_network(config)
    learner = on_policy.loss_learner(
        lambda params, minibatch, cfg: ppo_loss(params, network.apply, minibatch, cfg, axis_name),
        make_transform,
        make_batch,
        num_epochs=config.num_epochs,
        num_minibatches=config.num_minibatches,
        axis_name=axis_name,
    )
    return network, learner


make_agent, make_train = on_policy.agent_functions(
    "PPO", _pieces, lambda config: on_policy.gae_advantages
)
