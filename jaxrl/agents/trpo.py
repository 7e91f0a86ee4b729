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

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from jaxrl import envs, nets
from jaxrl._config import (
    config,
    in_range,
    one_of,
    positive,
    positive_int,
    probability,
    require,
    static,
)
from jaxrl.agents import on_policy
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.core.policy import categorical_kl, gaussian_kl, trpo_surrogate
from jaxrl.core.trust_region import trpo_step

__all__ = [
    "Config",
    "TRPOState",
    "make_agent",
    "make_network",
    "make_train",
    "mean_kl",
    "policy_step",
    "surrogate",
    "value_loss",
]


@config
class Config:
    """TRPO settings. Static fields fix shapes; the numeric ones can be swept under vmap."""

    env_id: str = static("CartPole-v1", "environment id (jaxrl.envs.make)")
    total_timesteps: int = static(100_000, "environment steps over all environments")
    num_envs: int = static(2, "environments stepped as one batch")
    num_steps: int = static(512, "rollout length T per update")
    hidden_sizes: tuple[int, ...] = static((64, 64), "MLP layer widths")
    activation: str = static("tanh", "tanh or relu")
    torso: str = static("mlp", "mlp or cnn (MinAtar)")
    log_std_init: float = static(0.0, "initial log σ of a Gaussian policy")
    vf_epochs: int = static(10, "passes of value regression per rollout")
    vf_minibatches: int = static(8, "minibatches per pass of value regression")
    cg_iters: int = static(15, "conjugate-gradient iterations")
    max_backtracks: int = static(10, "line-search step sizes tried")
    normalize_advantages: bool = static(True, "standardise advantages per rollout")
    normalize_obs: bool = static(False, "running observation normalisation")
    normalize_rewards: bool = static(False, "return-based reward scaling")
    max_kl: float = 0.01
    damping: float = 0.1
    backtrack_ratio: float = 0.8
    vf_learning_rate: float = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95

    def validate(self):
        names = ("total_timesteps", "num_envs", "num_steps", "vf_epochs", "vf_minibatches")
        for name in (*names, "cg_iters", "max_backtracks"):
            require(self, name, positive_int)
        require(self, "activation", one_of("tanh", "relu"))
        require(self, "torso", one_of("mlp", "cnn"))
        for name in ("max_kl", "vf_learning_rate"):
            require(self, name, positive)
        require(self, "damping", positive)
        require(self, "backtrack_ratio", in_range(0, 1, low_open=True, high_open=True))
        for name in ("gamma", "gae_lambda"):
            require(self, name, probability)
        batch = self.num_envs * self.num_steps
        if batch % self.vf_minibatches:
            raise ValueError(
                f"num_envs * num_steps ({batch}) must be divisible by vf_minibatches "
                f"({self.vf_minibatches})"
            )
        if self.total_timesteps < batch:
            raise ValueError(
                f"total_timesteps ({self.total_timesteps}) must be at least num_envs * num_steps "
                f"({batch}), the steps of one update"
            )


@flax.struct.dataclass
class TRPOState:
    """Everything a TRPO run carries from one update to the next."""

    params: on_policy.PolicyValueParams
    vf_opt_state: Any  # Adam state of the value network's parameters
    env_state: Any
    obs: jax.Array  # [B, *obs]
    key: jax.Array
    update_count: jax.Array  # int32 scalar


def make_network(config: Config, action_info=None) -> on_policy.PolicyValueNets:
    """A policy network and a separate value network (the trust region binds the policy only)."""
    if action_info is None:
        env, env_params = envs.make(config.env_id)
        action_info = envs.action_info(env, env_params)
    actor = on_policy.make_actor(
        action_info, config.hidden_sizes, config.activation, config.torso, config.log_std_init
    )
    critic = nets.ValueCritic(
        hidden_sizes=tuple(config.hidden_sizes), activation=config.activation, torso=config.torso
    )
    return on_policy.PolicyValueNets(actor=actor, critic=critic)


def _dist_params(dist) -> dict[str, jax.Array]:
    """The arrays that define a categorical or diagonal-Gaussian distrax distribution."""
    if hasattr(dist, "logits"):
        return {"logits": dist.logits}
    return {"mean": dist.loc, "log_std": jnp.log(dist.scale_diag)}


def mean_kl(policy_params, actor, obs: jax.Array, old: dict[str, jax.Array]) -> jax.Array:
    """KL̄ = mean_s KL(π_old(·|s) ‖ π_θ(·|s)) over ``obs [N, *obs]``.

    ``old`` holds π_old's arrays (``logits [N, A]`` or ``mean, log_std [N, A]``),
    computed once and held fixed.
    """
    new = _dist_params(actor.apply(policy_params, obs))
    old = jax.lax.stop_gradient(old)
    if "logits" in old:
        return categorical_kl(old["logits"], new["logits"]).mean()
    return gaussian_kl(old["mean"], old["log_std"], new["mean"], new["log_std"]).mean()


def surrogate(policy_params, actor, batch: dict) -> jax.Array:
    """L(θ) = mean(exp(log π_θ(a|s) − log π_old(a|s)) · Â) (``core.trpo_surrogate``)."""
    log_probs = actor.apply(policy_params, batch["obs"]).log_prob(batch["actions"])
    return trpo_surrogate(log_probs, batch["log_probs"], batch["advantages"])


def policy_step(policy_params, actor, batch: dict, config: Config) -> tuple[Any, dict]:
    """One trust-region step on the policy parameters with ``core.trust_region.trpo_step``.

    Args:
      policy_params: θ_old.
      actor: the policy module.
      batch: dict of ``obs [N, *obs]``, ``actions [N, *act]``, ``log_probs [N]``
        (log π_old) and ``advantages [N]``.
      config: the Config (δ, damping, backtrack ratio; CG and line-search lengths static).

    Returns:
      ``(new_policy_params, metrics)``: kl (KL̄(π_old ‖ π_new) measured after the
      step), improvement (L(new) − L(old)), surrogate and surrogate_new, num_backtracks,
      accepted (1.0 or 0.0), cg_residual, cg_iterations, expected_improvement.
    """
    old = _dist_params(actor.apply(policy_params, batch["obs"]))
    kl_fn = functools.partial(mean_kl, actor=actor, obs=batch["obs"], old=old)
    surrogate_fn = functools.partial(surrogate, actor=actor, batch=batch)
    new_params, metrics = trpo_step(
        policy_params,
        surrogate_fn,
        kl_fn,
        config.max_kl,
        damping=config.damping,
        cg_iters=config.cg_iters,
        backtrack_ratio=config.backtrack_ratio,
        max_backtracks=config.max_backtracks,
    )
    # Measured again on the returned parameters (the old ones when the step was rejected).
    metrics["kl"] = kl_fn(new_params)
    metrics["surrogate_new"] = surrogate_fn(new_params)
    return new_params, metrics


def value_loss(value_params, critic, minibatch: dict) -> jax.Array:
    """½·mean((V(s) − G)²) against the GAE targets G."""
    values = critic.apply(value_params, minibatch["obs"])
    return 0.5 * jnp.mean(jnp.square(values - minibatch["targets"]))


def _value_minibatch(carry, minibatch, *, critic, tx, lr):
    params, opt_state = carry
    loss, grads = jax.value_and_grad(value_loss)(params, critic, minibatch)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, updates))
    return (params, opt_state), {"value_loss": loss}


def _value_optimizer() -> optax.GradientTransformation:
    # The learning rate is applied by hand so that it stays a traced leaf.
    return optax.scale_by_adam(eps=1e-5)


def make_agent(config: Config, advantage_fn: on_policy.AdvantageFn | None = None) -> Agent:
    """Builds TRPO's ``init`` and ``update`` for ``config``.

    Args:
      config: the Config (static fields read here, numeric ones from the ``config``
        argument of ``init``/``update``, so they may be traced).
      advantage_fn: replaces GAE (``on_policy.gae_advantages``).
    """
    advantage_fn = advantage_fn or on_policy.gae_advantages
    env, env_params, action_info = on_policy.make_env(
        config.env_id,
        config.num_envs,
        normalize_obs=config.normalize_obs,
        normalize_rewards=config.normalize_rewards,
        gamma=float(config.gamma) if isinstance(config.gamma, float | int) else 0.99,
    )
    network = make_network(config, action_info)
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_timesteps // steps_per_update

    def init(key, cfg: Config) -> TRPOState:
        net_key, env_key, key = jax.random.split(key, 3)
        obs, env_state = env.reset(env_key, env_params)
        params = network.init(net_key, obs)
        return TRPOState(
            params=params,
            vf_opt_state=_value_optimizer().init(params.value),
            env_state=env_state,
            obs=obs,
            key=key,
            update_count=jnp.zeros((), jnp.int32),
        )

    def update(state: TRPOState, cfg: Config):
        key, rollout_key, vf_key = jax.random.split(state.key, 3)
        env_state, obs, rollout = on_policy.collect_rollout(
            network.act,
            state.params,
            env,
            env_params,
            state.env_state,
            state.obs,
            rollout_key,
            config.num_steps,
        )
        next_values = network.value(state.params, rollout.next_obs)
        advantages, targets = advantage_fn(rollout, next_values, cfg.gamma, cfg.gae_lambda)
        if config.normalize_advantages:
            advantages = on_policy.standardize(advantages)
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), rollout)
        policy_batch = {
            "obs": flat.obs,
            "actions": flat.actions,
            "log_probs": flat.log_probs,
            "advantages": advantages.reshape(-1),
        }
        policy_params, pm = policy_step(state.params.policy, network.actor, policy_batch, cfg)
        step = functools.partial(
            _value_minibatch,
            critic=network.critic,
            tx=_value_optimizer(),
            lr=cfg.vf_learning_rate,
        )
        (value_params, vf_opt_state), vm = on_policy.run_epochs(
            vf_key,
            (state.params.value, state.vf_opt_state),
            {"obs": rollout.obs, "targets": targets},
            step,
            config.vf_epochs,
            config.vf_minibatches,
        )
        entropy = network.distribution(state.params, flat.obs).entropy().mean()
        metrics = {
            **on_policy.episode_metrics(rollout),
            **pm,
            **vm,
            "entropy": entropy,
            "explained_variance": on_policy.explained_variance(rollout.values, targets),
        }
        new_state = TRPOState(
            params=on_policy.PolicyValueParams(policy=policy_params, value=value_params),
            vf_opt_state=vf_opt_state,
            env_state=env_state,
            obs=obs,
            key=key,
            update_count=state.update_count + 1,
        )
        return new_state, metrics

    return Agent(
        init=init, update=update, num_updates=num_updates, steps_per_update=steps_per_update
    )


def make_train(config: Config, advantage_fn: on_policy.AdvantageFn | None = None):
    """``train(key) -> (TRPOState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)`` works."""
    return make_train_fn(make_agent(config, advantage_fn), config)
