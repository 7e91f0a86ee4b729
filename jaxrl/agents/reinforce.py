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

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from jaxrl import envs, nets
from jaxrl._config import (
    config,
    non_negative,
    one_of,
    positive,
    positive_int,
    probability,
    require,
    static,
)
from jaxrl.agents import on_policy
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.core.policy import actor_critic_loss, masked_mean, policy_gradient_loss

__all__ = [
    "Config",
    "ReinforceState",
    "make_agent",
    "make_network",
    "make_train",
    "reinforce_loss",
]


@config
class Config:
    """REINFORCE settings. Static fields fix shapes; the numeric ones can be swept under vmap."""

    env_id: str = static("CartPole-v1", "environment id (jaxrl.envs.make)")
    total_timesteps: int = static(500_000, "environment steps over all environments")
    num_envs: int = static(4, "environments stepped as one batch")
    num_steps: int = static(128, "rollout length T per update")
    hidden_sizes: tuple[int, ...] = static((64, 64), "MLP layer widths")
    activation: str = static("tanh", "tanh or relu")
    torso: str = static("mlp", "mlp or cnn (MinAtar)")
    baseline: bool = static(True, "learn a value baseline b(s) = V(s) (separate network)")
    whole_episodes_only: bool = static(False, "use only steps whose episode ends in the rollout")
    normalize_advantages: bool = static(True, "standardise the advantages (or returns) per batch")
    anneal_lr: bool = static(False, "decay the learning rate linearly to 0")
    normalize_obs: bool = static(False, "running observation normalisation")
    log_std_init: float = static(0.0, "initial log σ of a Gaussian policy")
    learning_rate: float = 1e-3
    gamma: float = 0.99
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 5.0

    def validate(self):
        for name in ("total_timesteps", "num_envs", "num_steps"):
            require(self, name, positive_int)
        require(self, "activation", one_of("tanh", "relu"))
        require(self, "torso", one_of("mlp", "cnn"))
        for name in ("learning_rate", "max_grad_norm"):
            require(self, name, positive)
        require(self, "gamma", probability)
        require(self, "ent_coef", non_negative)
        require(self, "vf_coef", non_negative)
        batch = self.num_envs * self.num_steps
        if self.total_timesteps < batch:
            raise ValueError(
                f"total_timesteps ({self.total_timesteps}) must be at least num_envs * num_steps "
                f"({batch}), the steps of one update"
            )


@flax.struct.dataclass
class ReinforceState:
    """Everything a REINFORCE run carries from one update to the next."""

    params: on_policy.PolicyValueParams
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [B, *obs]
    key: jax.Array
    update_count: jax.Array  # int32 scalar


def make_network(config: Config, action_info=None) -> on_policy.PolicyValueNets:
    """The policy network and, with ``baseline``, a separate value network."""
    if action_info is None:
        env, env_params = envs.make(config.env_id)
        action_info = envs.action_info(env, env_params)
    actor = on_policy.make_actor(
        action_info,
        config.hidden_sizes,
        config.activation,
        config.torso,
        config.log_std_init,
    )
    critic = None
    if config.baseline:
        critic = nets.ValueCritic(
            hidden_sizes=tuple(config.hidden_sizes),
            activation=config.activation,
            torso=config.torso,
        )
    return on_policy.PolicyValueNets(actor=actor, critic=critic)


def _optimizer(config: Config) -> optax.GradientTransformation:
    # The learning rate is applied by hand in update so that it stays a traced leaf.
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.scale_by_adam(eps=1e-5)
    )


def reinforce_loss(
    params: on_policy.PolicyValueParams,
    network: on_policy.PolicyValueNets,
    batch: dict,
    config: Config,
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

    Returns:
      ``(loss, metrics)`` with policy_loss, value_loss, entropy.
    """
    dist = network.distribution(params, batch["obs"])
    log_probs = dist.log_prob(batch["actions"])
    mask = batch["mask"]
    advantages = batch["advantages"]
    if config.normalize_advantages:
        advantages = on_policy.standardize(advantages, mask)
    entropy = dist.entropy()
    if network.critic is None:
        policy_loss, _ = policy_gradient_loss(log_probs, advantages, mask)
        mean_entropy = masked_mean(entropy, mask)
        loss = policy_loss - config.ent_coef * mean_entropy
        return loss, {
            "policy_loss": policy_loss,
            "value_loss": jnp.zeros((), jnp.float32),
            "entropy": mean_entropy,
        }
    values = network.value(params, batch["obs"])
    return actor_critic_loss(
        log_probs,
        advantages,
        values,
        batch["returns"],
        entropy,
        config.vf_coef,
        config.ent_coef,
        mask,
    )


def make_agent(config: Config, advantage_fn: on_policy.AdvantageFn | None = None) -> Agent:
    """Builds REINFORCE's ``init`` and ``update`` for ``config``.

    Args:
      config: the Config (static fields read here, numeric ones from the ``config``
        argument of ``init``/``update``, so they may be traced).
      advantage_fn: replaces ``on_policy.monte_carlo_advantages`` (returns minus baseline).
    """
    advantage_fn = advantage_fn or on_policy.monte_carlo_advantages
    env, env_params, action_info = on_policy.make_env(
        config.env_id, config.num_envs, normalize_obs=config.normalize_obs
    )
    network = make_network(config, action_info)
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_timesteps // steps_per_update

    def init(key, cfg: Config) -> ReinforceState:
        net_key, env_key, key = jax.random.split(key, 3)
        obs, env_state = env.reset(env_key, env_params)
        params = network.init(net_key, obs)
        return ReinforceState(
            params=params,
            opt_state=_optimizer(cfg).init(params),
            env_state=env_state,
            obs=obs,
            key=key,
            update_count=jnp.zeros((), jnp.int32),
        )

    def update(state: ReinforceState, cfg: Config):
        key, rollout_key = jax.random.split(state.key)
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
        advantages, returns = advantage_fn(rollout, next_values, cfg.gamma, 1.0)
        if config.whole_episodes_only:
            mask = on_policy.complete_episode_mask(rollout)
        else:
            mask = jnp.ones_like(rollout.rewards)
        batch = {
            "obs": rollout.obs,
            "actions": rollout.actions,
            "advantages": advantages,
            "returns": returns,
            "mask": mask,
        }
        grads, metrics = jax.grad(reinforce_loss, has_aux=True)(state.params, network, batch, cfg)
        tx = _optimizer(cfg)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        frac = 1.0 - state.update_count / num_updates
        lr = cfg.learning_rate * frac if config.anneal_lr else cfg.learning_rate
        params = optax.apply_updates(state.params, jax.tree.map(lambda u: -lr * u, updates))
        metrics = {
            **on_policy.episode_metrics(rollout),
            **metrics,
            "grad_norm": optax.global_norm(grads),
            "used_fraction": mask.mean(),
            "learning_rate": jnp.asarray(lr, jnp.float32),
        }
        if config.baseline:
            metrics["explained_variance"] = on_policy.explained_variance(rollout.values, returns)
        new_state = ReinforceState(
            params=params,
            opt_state=opt_state,
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
    """``train(key) -> (ReinforceState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)``."""
    return make_train_fn(make_agent(config, advantage_fn), config)
