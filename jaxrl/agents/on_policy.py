"""The on-policy family's shared Config and agent wiring: PPO, A2C, REINFORCE and TRPO.

An agent module gives its network (``act_fn``, ``value_fn``), its advantage
function and a :class:`~jaxrl.agents.on_policy_update.Learner`;
:func:`on_policy_agent` builds the environments and the initial state and runs
``jaxrl.agents.on_policy_update.make_update`` (one rollout, its advantages, one
learning step), and :func:`agent_functions` gives an algorithm its ``make_agent``
and ``make_train``. The update (:mod:`jaxrl.agents.on_policy_update`) and the data
side (:mod:`jaxrl.agents.rollout`) are re-exported here.

Data parallelism. With ``axis_name`` and ``num_shards = D`` (:func:`on_policy_agent`),
the loop runs inside ``shard_map`` with one seed's environments split over that axis:
each device steps ``B / D`` of them. Every random draw of an environment is keyed by
its global index and each minibatch holds ``T / M`` steps of every environment
(:mod:`jaxrl.agents.rollout`); gradients, the reward-scaling statistics, advantage
standardisation and the metrics are reduced over the axis. So D devices compute the
one-device run (same global batch) up to float32 rounding;
:mod:`jaxrl.run.data_parallel` builds it. (``normalize_obs`` keeps its statistics in
the environment wrapper, per device, so a split run refuses it.)

Shapes: ``T`` rollout length (``num_steps``), ``B`` environments (``num_envs``),
``N = T·B`` samples in a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrl import nets
from jaxrl._config import (
    config,
    in_range,
    non_negative,
    one_of,
    positive,
    positive_int,
    positive_ints,
    probability,
    require,
    static,
)
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.agents.on_policy_update import *  # noqa: F403 (the update, re-exported)
from jaxrl.agents.on_policy_update import Learner, OnPolicyState, make_update
from jaxrl.agents.on_policy_update import __all__ as _update_all
from jaxrl.agents.rollout import *  # noqa: F403 (the data side, re-exported)
from jaxrl.agents.rollout import (
    AdvantageFn,
    actor_critic_fns,
    env_keys,
    local_env_ids,
    make_env,
    standardize,
)
from jaxrl.agents.rollout import __all__ as _rollout_all
from jaxrl.core.normalize import reward_scaler_init

__all__ = [
    *_rollout_all,
    *_update_all,
    "OnPolicyConfig",
    "advantages_of",
    "check_config",
    "clip_then_adam",
    "agent_functions",
    "local_num_envs",
    "on_policy_agent",
]


@config
class OnPolicyConfig:
    """The fields every on-policy Config shares; PPO, A2C, REINFORCE and TRPO extend it.

    Static fields fix shapes; γ (and every numeric field an agent adds) is a traced leaf.
    """

    env_id: str = static("CartPole-v1", "environment id (jaxrl.envs.make)")
    total_timesteps: int = static(500_000, "environment steps over all environments")
    num_envs: int = static(4, "environments stepped as one batch")
    num_steps: int = static(128, "rollout length T per update")
    hidden_sizes: tuple[int, ...] = static((64, 64), "MLP layer widths")
    activation: str = static("tanh", "tanh or relu")
    torso: str = static("mlp", "mlp or cnn (MinAtar)")
    normalize_obs: bool = static(False, "running observation normalisation")
    normalize_rewards: bool = static(False, "scale rewards by the running return's std (γ)")
    gamma: float = 0.99

    def validate(self):
        check_config(self)


def on_policy_agent(
    config,
    network,
    learner: Learner,
    advantage_fn,
    *,
    act_fn=None,
    value_fn=None,
    env_kwargs=None,
    axis_name: str | None = None,
    num_shards: int = 1,
) -> Agent:
    """The :class:`~jaxrl.agents.base.Agent` of an on-policy ``config`` and its pieces.

    Reads the static fields ``env_id``, ``num_envs``, ``num_steps``, ``total_timesteps``
    and, where the config has them, ``normalize_obs``, ``normalize_rewards`` and
    ``anneal_lr``. ``network`` has ``init(key, obs)``, and ``act``/``value`` unless
    ``act_fn``/``value_fn`` are given (an ``nets.ActorCritic`` gets
    :func:`~jaxrl.agents.rollout.actor_critic_fns`). With ``axis_name`` and
    ``num_shards = D`` the agent is one device's part of a run split over D devices
    (inside ``shard_map``): it holds ``num_envs / D`` environments.
    """
    normalize_obs = getattr(config, "normalize_obs", False)
    local_envs = local_num_envs(config, num_shards)
    if normalize_obs and num_shards > 1:
        raise ValueError(
            "normalize_obs keeps its statistics per device, so a run split across "
            f"{num_shards} devices would differ from one device; set normalize_obs=False "
            "or run on one device"
        )
    normalize_rewards = getattr(config, "normalize_rewards", False)
    env, env_params, _ = make_env(
        config.env_id,
        local_envs,
        normalize_obs=normalize_obs,
        env_kwargs=env_kwargs,
        per_env_keys=True,
    )
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_timesteps // steps_per_update
    if act_fn is None and isinstance(network, nets.ActorCritic):
        act_fn, value_fn = actor_critic_fns(network)

    def init(key, cfg) -> OnPolicyState:
        net_key, env_key, key = jax.random.split(key, 3)
        keys = env_keys(env_key, config.num_envs, local_env_ids(local_envs, axis_name))
        obs, env_state = env.reset(keys, env_params)
        params = network.init(net_key, obs)
        scaler = reward_scaler_init(local_envs) if normalize_rewards else None
        return OnPolicyState(
            params=params,
            opt_state=learner.init(params, cfg),
            env_state=env_state,
            obs=obs,
            key=key,
            update_count=jnp.zeros((), jnp.int32),
            reward_scaler=scaler,
        )

    update = make_update(
        env,
        env_params,
        act_fn=act_fn or network.act,
        value_fn=value_fn or network.value,
        advantage_fn=advantage_fn,
        learner=learner,
        num_steps=config.num_steps,
        num_updates=num_updates,
        anneal_lr=getattr(config, "anneal_lr", False),
        normalize_rewards=normalize_rewards,
        axis_name=axis_name,
        num_envs=config.num_envs,
    )
    return Agent(
        init=init, update=update, num_updates=num_updates, steps_per_update=steps_per_update
    )


def local_num_envs(config, num_shards: int) -> int:
    """``Bₗ = num_envs / num_shards``, the environments one device steps when one run is split
    over ``num_shards`` devices; raises ``ValueError`` unless ``num_shards`` divides them."""
    if config.num_envs % num_shards:
        raise ValueError(
            f"num_envs ({config.num_envs}) must be divisible by the number of devices "
            f"({num_shards}) to split one run across them"
        )
    return config.num_envs // num_shards


def agent_functions(
    algo: str,
    pieces: Callable[[Any, str | None], tuple[Any, Learner]],
    default_advantage: Callable[[Any], AdvantageFn],
    *,
    splits: bool = True,
) -> tuple[Callable[..., Agent], Callable]:
    """``(make_agent, make_train)`` of an on-policy algorithm, from what sets it apart.

    Args:
      algo: the algorithm's name, for the docstrings.
      pieces: ``(config, axis_name) -> (network, learner)``.
      default_advantage: ``config -> AdvantageFn``, used when ``make_agent`` gets none.
      splits: whether one run can be split over devices (then ``make_agent`` takes
        ``num_shards``; see :mod:`jaxrl.run.data_parallel`).

    Returns:
      ``make_agent(config, advantage_fn=None, axis_name=None[, num_shards=1]) -> Agent``
      and ``make_train(config, advantage_fn=None) -> train``.
    """

    def build(config, advantage_fn, axis_name, num_shards) -> Agent:
        network, learner = pieces(config, axis_name)
        advantage_fn = advantage_fn or default_advantage(config)
        return on_policy_agent(
            config, network, learner, advantage_fn, axis_name=axis_name, num_shards=num_shards
        )

    if splits:

        def make_agent(config, advantage_fn=None, axis_name=None, num_shards: int = 1) -> Agent:
            return build(config, advantage_fn, axis_name, num_shards)
    else:

        def make_agent(config, advantage_fn=None, axis_name=None) -> Agent:
            return build(config, advantage_fn, axis_name, 1)

    make_agent.__doc__ = f"""Builds {algo}'s ``init`` and ``update`` on ``on_policy.make_update``.

    Args:
      config: the {algo} Config (its static fields are read here; its numeric fields are
        read from the ``config`` argument of ``init``/``update``, so they may be traced).
      advantage_fn: an ``on_policy.AdvantageFn`` in place of the default (e.g. V-trace or
        λ-returns minus values; see ``examples/custom_advantage.py``).
      axis_name: the mapped axis gradients and statistics are reduced over, or None."""
    if splits:
        make_agent.__doc__ += """
      num_shards: devices on that axis, each stepping ``num_envs / num_shards``
        environments of one run (:mod:`jaxrl.run.data_parallel`)."""

    def make_train(config, advantage_fn=None):
        return make_train_fn(make_agent(config, advantage_fn), config)

    make_train.__doc__ = f"""``train(key) -> (state, metrics)`` of {algo}, pure:
    ``jax.jit(jax.vmap(train))(keys)`` works."""
    return make_agent, make_train


# Fields that several on-policy Configs add, checked wherever a Config has them.
_COMMON_FIELDS = (
    ("learning_rate", positive),
    ("max_grad_norm", positive),
    ("ent_coef", non_negative),
    ("vf_coef", non_negative),
    ("gae_lambda", probability),
    ("log_std_init", in_range(-20.0, 2.0)),  # the range a σ head's log σ is clipped to
)


def check_config(
    cfg, minibatches: str | None = None, activations: tuple[str, ...] = ("tanh", "relu")
) -> None:
    """The checks every on-policy Config shares (raises ``ValueError`` naming the field).

    Positive ``total_timesteps``, ``num_envs``, ``num_steps``; ``activation`` one of
    ``activations``; known ``torso``; γ in [0, 1]; where the config has them, positive
    ``learning_rate`` and ``max_grad_norm``, non-negative ``ent_coef`` and ``vf_coef``,
    λ (``gae_lambda``) in [0, 1], ``log_std_init`` in [−20, 2]; ``num_steps`` divisible
    by the field named ``minibatches`` (every minibatch takes the same steps of every
    environment); one update's ``num_envs * num_steps`` steps within ``total_timesteps``.
    """
    names = ("total_timesteps", "num_envs", "num_steps") + ((minibatches,) if minibatches else ())
    for name in names:
        require(cfg, name, positive_int)
    require(cfg, "hidden_sizes", positive_ints)
    require(cfg, "activation", one_of(*activations))
    require(cfg, "torso", one_of("mlp", "cnn"))
    require(cfg, "gamma", probability)
    for name, check in _COMMON_FIELDS:
        if hasattr(cfg, name):
            require(cfg, name, check)
    batch = cfg.num_envs * cfg.num_steps
    if minibatches and cfg.num_steps % getattr(cfg, minibatches):
        raise ValueError(
            f"num_steps ({cfg.num_steps}) must be divisible by {minibatches} "
            f"({getattr(cfg, minibatches)}): every minibatch takes num_steps / {minibatches} "
            "steps of every environment"
        )
    if cfg.total_timesteps < batch:
        raise ValueError(
            f"total_timesteps ({cfg.total_timesteps}) must be at least num_envs * num_steps "
            f"({batch}), the steps of one update"
        )


def clip_then_adam(config) -> optax.GradientTransformation:
    """Clip by global norm (``config.max_grad_norm``), then Adam (ε = 1e-5), without the
    learning rate (the on-policy loop adds it)."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.scale_by_adam(eps=1e-5)
    )


def advantages_of(batch: dict, config, mask=None, axis_name: str | None = None) -> jax.Array:
    """``batch["advantages"]``, standardised (:func:`standardize`, over the elements where
    ``mask`` is non-zero and every device of ``axis_name``) if ``config.normalize_advantages``."""
    advantages = batch["advantages"]
    if config.normalize_advantages:
        advantages = standardize(advantages, mask, axis_name=axis_name)
    return advantages
