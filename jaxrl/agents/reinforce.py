"""REINFORCE: Monte Carlo policy gradient, with an optional learned baseline.

    ∇J(θ) ≈ mean_t ∇log π_θ(aₜ|sₜ) · (Gₜ − b(sₜ)),   Gₜ = Σₖ γᵏ rₜ₊ₖ to the episode's end

See Williams, Simple statistical gradient-following algorithms for
connectionist reinforcement learning (1992):
https://link.springer.com/article/10.1007/BF00992696, and Sutton & Barto
(2nd ed.), §13.3–13.4: http://incompleteideas.net/book/the-book-2nd.html

One update: collect ``num_steps`` steps from ``num_envs`` environments, compute
each step's return to the end of its episode (``on_policy.monte_carlo_advantages``),
then take one gradient step. Rollouts have a fixed length, so an episode may
be cut by the rollout's end; its returns then bootstrap from the learned
baseline V(s') (with no baseline, from 0). A truncated (time-limit) episode
bootstraps the same way, a terminated one never does.

``whole_episodes_only`` keeps the textbook estimator instead: the loss is a
masked mean over the steps whose episode ends inside the rollout
(``on_policy.complete_episode_mask``), so no return is cut and nothing is
bootstrapped. The steps after an environment's last episode end are dropped
(the next rollout goes on from the following step, so they are lost). The
price is that loss of data and a bias towards episodes short enough to finish
before the rollout ends; make ``num_steps`` several episode lengths long when
using it.

Shapes: ``T`` = ``num_steps``, ``B`` = ``num_envs``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl._config import config, static
from jaxrl.agents import on_policy
from jaxrl.core.policy import actor_critic_loss

__all__ = [
    "Config",
    "ReinforceState",
    "make_agent",
    "make_batch",
    "make_network",
    "make_train",
    "make_transform",
    "make_whole_episode_batch",
    "reinforce_loss",
]


@config
class Config(on_policy.OnPolicyConfig):
    """REINFORCE settings. Static fields fix shapes; the numeric ones can be swept under vmap."""

    baseline: bool = static(True, "learn a value baseline b(s) = V(s) (separate network)")
    whole_episodes_only: bool = static(False, "use only steps whose episode ends in the rollout")
    normalize_advantages: bool = static(True, "standardise the advantages (or returns) per batch")
    anneal_lr: bool = static(False, "decay the learning rate linearly to 0")
    log_std_init: float = static(0.0, "initial log σ of a Gaussian policy")
    learning_rate: float = 1e-3
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 5.0


ReinforceState = on_policy.OnPolicyState  # one state class for the on-policy family


def make_network(config: Config, action_info=None) -> on_policy.PolicyValueNets:
    """The policy network and, with ``baseline``, a separate value network."""
    return on_policy.make_policy_value(config, action_info, critic=config.baseline)


make_transform = on_policy.clip_then_adam  # clip by global norm, then Adam (ε = 1e-5)


def reinforce_loss(
    params: on_policy.PolicyValueParams,
    network: on_policy.PolicyValueNets,
    batch: dict,
    config: Config,
    axis_name: str | None = None,
) -> tuple[jax.Array, dict]:
    """REINFORCE's loss on one batch: −mean(log π·A) [+ c_v·½(V − G)²] − c_e·entropy.

    Its gradient is the Monte Carlo policy-gradient estimate. All means are
    weighted by ``batch["mask"]``.

    Args:
      params: ``PolicyValueParams`` (``value`` is None without a baseline).
      network: the ``PolicyValueNets`` of :func:`make_network`.
      batch: dict of ``obs [*N, *obs]``, ``actions [*N, *act]``, ``advantages [*N]``,
        ``returns [*N]`` and ``mask [*N]``.
      config: the Config (coefficients; ``normalize_advantages`` is read statically).
      axis_name: standardise the advantages over every device of this axis (a split run).

    Returns:
      ``(loss, metrics)`` with policy_loss, value_loss, entropy, used_fraction (mean mask).
    """
    dist = network.distribution(params, batch["obs"])
    mask = batch["mask"]
    values = None if network.critic is None else network.value(params, batch["obs"])
    loss, metrics = actor_critic_loss(
        dist.log_prob(batch["actions"]),
        on_policy.advantages_of(batch, config, mask, axis_name),
        values,
        batch["returns"],
        dist.entropy(),
        config.vf_coef,
        config.ent_coef,
        mask,
    )
    return loss, {**metrics, "used_fraction": mask.mean()}


def make_batch(rollout: on_policy.Rollout, advantages, returns) -> dict:
    """The arrays REINFORCE's loss reads, each ``[T, B, ...]``; ``mask`` all ones."""
    return {
        "obs": rollout.obs,
        "actions": rollout.actions,
        "advantages": advantages,
        "returns": returns,
        "mask": jnp.ones_like(rollout.rewards),
    }


def make_whole_episode_batch(rollout: on_policy.Rollout, advantages, returns) -> dict:
    """:func:`make_batch` masked to the steps whose episode ends inside the rollout."""
    mask = on_policy.complete_episode_mask(rollout)
    return {**make_batch(rollout, advantages, returns), "mask": mask}


def _pieces(config: Config, axis_name: str | None):
    if config.whole_episodes_only and axis_name is not None:
        raise ValueError(
            "whole_episodes_only=True cannot split one run across devices (its masked means "
            "would be per device); run it on one device"
        )
    network = make_network(config)
    return network, on_policy.loss_learner(
        lambda params, batch, cfg: reinforce_loss(params, network, batch, cfg, axis_name),
        make_transform,
        make_whole_episode_batch if config.whole_episodes_only else make_batch,
        axis_name=axis_name,
    )


make_agent, make_train = on_policy.agent_functions(
    "REINFORCE", _pieces, lambda config: on_policy.monte_carlo_advantages
)
