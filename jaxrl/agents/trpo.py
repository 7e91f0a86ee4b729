"""Trust Region Policy Optimization with GAE and a regression-fitted value function.

    maximise  L(θ) = mean(π_θ(a|s) / π_old(a|s) · Â)   subject to   KL̄(π_old ‖ π_θ) ≤ δ

One update: collect ``num_steps`` steps from ``num_envs`` environments, compute
GAE(γ, λ) advantages with the value network, take one natural-gradient step on
the policy's parameters alone (``core.trust_region.trpo_step``: conjugate
gradient on Fisher-vector products, the step scaled to the KL bound δ, then a
backtracking line search that accepts only a step which improves the
surrogate and keeps the measured KL within δ), then fit the value network to
the GAE targets by ``vf_epochs`` passes of ``vf_minibatches`` Adam steps.

See Schulman et al., Trust Region Policy Optimization (2015):
https://arxiv.org/abs/1502.05477, and High-Dimensional Continuous Control
Using Generalized Advantage Estimation (2016): https://arxiv.org/abs/1506.02438

Shapes: ``T`` = ``num_steps``, ``B`` = ``num_envs``, ``N = T·B``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrl._config import config, in_range, positive, positive_int, require, static
from jaxrl.agents import on_policy
from jaxrl.core.trust_region import policy_trust_region_step

__all__ = ["Config", "TRPOState", "make_agent", "make_learner", "make_network", "make_train"]


@config
class Config(on_policy.OnPolicyConfig):
    """TRPO settings. Static fields fix shapes; the numeric ones can be swept under vmap."""

    total_timesteps: int = static(100_000, "environment steps over all environments")
    num_envs: int = static(2, "environments stepped as one batch")
    num_steps: int = static(512, "rollout length T per update")
    log_std_init: float = static(0.0, "initial log σ of a Gaussian policy")
    vf_epochs: int = static(10, "passes of value regression per rollout")
    vf_minibatches: int = static(8, "minibatches per pass of value regression")
    cg_iters: int = static(15, "conjugate-gradient iterations")
    max_backtracks: int = static(10, "line-search step sizes tried")
    normalize_advantages: bool = static(True, "standardise advantages per rollout")
    max_kl: float = 0.01
    damping: float = 0.1
    backtrack_ratio: float = 0.8
    vf_learning_rate: float = 1e-3
    gae_lambda: float = 0.95

    def validate(self):
        for name in ("vf_epochs", "cg_iters", "max_backtracks"):
            require(self, name, positive_int)
        for name in ("max_kl", "vf_learning_rate", "damping"):
            require(self, name, positive)
        require(self, "backtrack_ratio", in_range(0, 1, low_open=True, high_open=True))
        on_policy.check_config(self, minibatches="vf_minibatches")


TRPOState = on_policy.OnPolicyState  # one state class; opt_state is the value network's


# A policy network and a separate value network (the trust region binds the policy only).
make_network = on_policy.make_policy_value


def policy_step(policy_params, actor, batch: dict, config: Config) -> tuple[Any, dict]:
    """One trust-region step on the policy (``core.trust_region.policy_trust_region_step``)
    with the Config's δ, damping, CG iterations and line search; ``batch`` holds ``obs``,
    ``actions``, ``log_probs`` (log π_old) and ``advantages``, each ``[N, ...]``."""
    return policy_trust_region_step(
        policy_params,
        actor.apply,
        batch,
        config.max_kl,
        damping=config.damping,
        cg_iters=config.cg_iters,
        backtrack_ratio=config.backtrack_ratio,
        max_backtracks=config.max_backtracks,
    )


def value_loss(value_params, critic, minibatch: dict) -> jax.Array:
    """½·mean((V(s) − G)²) against the GAE targets G."""
    values = critic.apply(value_params, minibatch["obs"])
    return 0.5 * jnp.mean(jnp.square(values - minibatch["targets"]))


def make_value_transform(config: Config) -> optax.GradientTransformation:
    """Adam (ε = 1e-5) for the value network; the loop adds ``vf_learning_rate``."""
    del config
    return optax.scale_by_adam(eps=1e-5)


def make_learner(network: on_policy.PolicyValueNets, config: Config, axis_name=None):
    """TRPO's :class:`~jaxrl.agents.on_policy.Learner`: a trust-region step on the policy,
    then ``vf_epochs`` × ``vf_minibatches`` Adam steps of value regression.

    ``axis_name`` averages the value gradients over that axis; the policy step is
    not averaged (the conjugate-gradient solve would need every device's batch).
    """

    def loss(value_params, minibatch, cfg):
        del cfg
        v_loss = value_loss(value_params, network.critic, minibatch)
        return v_loss, {"value_loss": v_loss}

    value_learner = on_policy.loss_learner(
        loss,
        make_value_transform,
        lambda rollout, advantages, targets: {"obs": rollout.obs, "targets": targets},
        num_epochs=config.vf_epochs,
        num_minibatches=config.vf_minibatches,
        axis_name=axis_name,
        rate="vf_learning_rate",
    )

    def learn(params, opt_state, rollout, advantages, targets, cfg, key):
        if config.normalize_advantages:
            advantages = on_policy.standardize(advantages)
        batch = on_policy.actor_critic_batch(rollout, advantages, targets)
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)  # [N, ...]
        policy_params, pm = policy_step(params.policy, network.actor, flat, cfg)
        value_params, opt_state, vm = value_learner.learn(
            params.value, opt_state, rollout, advantages, targets, cfg, key
        )
        entropy = network.distribution(params, flat["obs"]).entropy().mean()
        new_params = on_policy.PolicyValueParams(policy=policy_params, value=value_params)
        return new_params, opt_state, {**pm, **vm, "entropy": entropy}

    def init(params, cfg):
        return value_learner.init(params.value, cfg)

    return value_learner._replace(init=init, learn=learn)  # uses a key, rate vf_learning_rate


def _pieces(config: Config, axis_name: str | None):
    network = make_network(config)
    return network, make_learner(network, config, axis_name)


# One run is not split over devices: the conjugate-gradient solve needs the whole batch.
make_agent, make_train = on_policy.agent_functions(
    "TRPO", _pieces, lambda config: on_policy.gae_advantages, splits=False
)
