"""The on-policy update loop that PPO, A2C, REINFORCE and TRPO plug into.

One update (:func:`make_update`)::

    rollout = collect num_steps steps of num_envs environments   (rollout.collect_rollout)
    rollout = rewards / running std of the return                   (normalize_rewards, traced γ)
    A, G    = advantage_fn(rollout, V(s'), γ, λ)                    (GAE, n-step, Monte Carlo …)
    params  = learner.learn(params, opt_state, rollout, A, G, …)    (gradient epochs, trust region)

An agent module gives its network (``act_fn``, ``value_fn``), its advantage
function and a :class:`Learner`; the loop owns the state (:class:`OnPolicyState`),
the keys, the learning rate (an ``optax.inject_hyperparams`` hyperparameter set
from the traced config each update, linearly annealed on request) and the metrics.
:func:`loss_learner` makes the learner of a loss: ``num_epochs`` passes of
``num_minibatches`` gradient steps (``jaxrl.core.run_epochs``), or one step on
the whole rollout.

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

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax

from jaxrl import nets
from jaxrl._config import config, one_of, positive_int, positive_ints, probability, require, static
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.agents.rollout import *  # noqa: F403 (the data side, re-exported)
from jaxrl.agents.rollout import (
    AdvantageFn,
    actor_critic_fns,
    collect_rollout,
    env_keys,
    episode_metrics,
    explained_variance,
    local_env_ids,
    make_env,
    run_epochs,
)
from jaxrl.agents.rollout import __all__ as _rollout_all
from jaxrl.core.normalize import reward_scaler_init, reward_scaler_update

__all__ = [
    *_rollout_all,
    "Learner",
    "OnPolicyConfig",
    "OnPolicyState",
    "check_config",
    "gradient_step",
    "loss_learner",
    "agent_functions",
    "make_update",
    "on_policy_agent",
    "scale_rewards",
    "set_learning_rate",
    "with_learning_rate",
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


@flax.struct.dataclass
class OnPolicyState:
    """Everything an on-policy run carries from one update to the next."""

    params: Any
    opt_state: Any  # an optax.inject_hyperparams state holding "learning_rate"
    env_state: Any
    obs: jax.Array  # [B, *obs]
    key: jax.Array
    update_count: jax.Array  # int32 scalar
    reward_scaler: Any = None  # RewardScalerState (returns [B]) with normalize_rewards, else None


def with_learning_rate(
    transform: optax.GradientTransformation, learning_rate
) -> optax.GradientTransformation:
    """``transform`` followed by ``−learning_rate·u``, the rate held in the optimiser state.

    The rate is an ``optax.inject_hyperparams`` hyperparameter, so it may be a
    traced value (one compiled program for a sweep over it) and
    :func:`set_learning_rate` changes it between steps.
    """

    def make(learning_rate):
        return optax.chain(transform, optax.scale_by_learning_rate(learning_rate))

    return optax.inject_hyperparams(make)(learning_rate=learning_rate)


def set_learning_rate(opt_state, learning_rate):
    """The ``with_learning_rate`` state with its rate replaced by ``learning_rate``."""
    rate = jnp.asarray(learning_rate, jnp.float32)
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": rate})


def gradient_step(loss_fn, params, opt_state, batch, cfg, tx, axis_name: str | None = None):
    """One optimiser step on ``loss_fn(params, batch, cfg) -> (loss, metrics)``.

    With ``axis_name`` the gradients are averaged over that axis first.

    Returns:
      ``(params, opt_state, grads, metrics)``.
    """
    grads, metrics = jax.grad(loss_fn, has_aux=True)(params, batch, cfg)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, grads, metrics


class Learner(NamedTuple):
    """How an on-policy agent learns from one rollout (see :func:`loss_learner`)."""

    # (params, cfg) -> opt_state, a with_learning_rate state
    init: Callable[[Any, Any], Any]
    # (params, opt_state, rollout, advantages [T, B], targets [T, B], cfg, key)
    #   -> (params, opt_state, metrics)
    learn: Callable[..., tuple[Any, Any, dict]]
    uses_key: bool  # whether learn draws random numbers (shuffles): the loop then splits a key
    rate: str = "learning_rate"  # the Config field of the optimiser's learning rate


def loss_learner(
    loss_fn: Callable[[Any, dict, Any], tuple[jax.Array, dict]],
    make_transform: Callable[[Any], optax.GradientTransformation],
    make_batch: Callable[[Any, jax.Array, jax.Array], dict],
    *,
    num_epochs: int = 0,
    num_minibatches: int = 1,
    axis_name: str | None = None,
) -> Learner:
    """The learner of a loss: ``num_epochs`` × ``num_minibatches`` gradient steps.

    Args:
      loss_fn: ``(params, batch, cfg) -> (loss, metrics)``.
      make_transform: ``cfg -> optax transformation without the learning rate``
        (e.g. clip by global norm, then Adam); built from the traced config.
      make_batch: ``(rollout, advantages, targets) -> dict of [T, B, ...] arrays``.
      num_epochs: passes over the shuffled rollout; 0 means one step on the whole
        rollout in its ``[T, B]`` order, reporting ``grad_norm`` (A2C, REINFORCE).
      num_minibatches: minibatches per pass.
      axis_name: average gradients over this axis (see :func:`gradient_step`).
    """

    def tx(cfg):
        return with_learning_rate(make_transform(cfg), cfg.learning_rate)

    def init(params, cfg):
        return tx(cfg).init(params)

    def learn(params, opt_state, rollout, advantages, targets, cfg, key):
        batch = make_batch(rollout, advantages, targets)
        if num_epochs == 0:
            params, opt_state, grads, metrics = gradient_step(
                loss_fn, params, opt_state, batch, cfg, tx(cfg), axis_name
            )
            return params, opt_state, {**metrics, "grad_norm": optax.global_norm(grads)}

        def step(carry, minibatch):
            params, opt_state, _, metrics = gradient_step(
                loss_fn, *carry, minibatch, cfg, tx(cfg), axis_name
            )
            return (params, opt_state), metrics

        env_ids = local_env_ids(rollout.rewards.shape[1], axis_name)
        (params, opt_state), metrics = run_epochs(
            key, (params, opt_state), batch, step, num_epochs, num_minibatches, env_ids
        )
        return params, opt_state, metrics

    return Learner(init=init, learn=learn, uses_key=num_epochs > 0)


def scale_rewards(scaler, rewards: jax.Array, done: jax.Array, gamma, axis_name=None):
    """Rewards ``[T, B]`` divided by the running std of the discounted return (γ traced).

    Step t is scaled with the statistics that include step t
    (``jaxrl.core.reward_scaler_update`` applied step by step). With ``axis_name``
    (``[T, Bₗ]`` rewards on each device) every device scales the rewards of all
    environments, gathered, so the statistics merge the whole batch as on one device;
    each device keeps its own columns.

    Returns:
      ``(scaled rewards [T, B], scaler)``.
    """
    if axis_name is not None:
        cols = local_env_ids(rewards.shape[1], axis_name)
        gather = functools.partial(jax.lax.all_gather, axis_name=axis_name, tiled=True)
        whole = scaler._replace(returns=gather(scaler.returns))
        scaled, whole = scale_rewards(whole, gather(rewards, axis=1), gather(done, axis=1), gamma)
        return scaled[:, cols], whole._replace(returns=whole.returns[cols])

    def step(scaler, xs):
        scaled, new = reward_scaler_update(scaler, *xs, gamma)
        return new, scaled

    scaler, scaled = jax.lax.scan(step, scaler, (rewards, done))
    return scaled, scaler


def make_update(
    env: Any,
    env_params: Any,
    *,
    act_fn: Callable,
    value_fn: Callable,
    advantage_fn: Callable,
    learner: Learner,
    num_steps: int,
    num_updates: int,
    anneal_lr: bool = False,
    normalize_rewards: bool = False,
    axis_name: str | None = None,
    num_envs: int | None = None,
) -> Callable[[OnPolicyState, Any], tuple[OnPolicyState, dict]]:
    """``update(state, cfg) -> (state, metrics)``: one rollout, its advantages, one learning step.

    Args:
      env, env_params: the batched environment, taking a key per environment
        (``make_env(..., per_env_keys=True)``).
      act_fn: ``(params, obs [B, *obs], key) -> (actions, log_probs [B], values [B])``.
      value_fn: ``(params, obs [*N, *obs]) -> values [*N]``.
      advantage_fn: ``(rollout, next_values [T, B], γ, λ) -> (advantages, targets)``;
        λ is ``cfg.gae_lambda`` (1.0 where the config has none).
      learner: how the parameters learn from the rollout.
      num_steps: ``T``.
      num_updates: updates in a run (the annealing horizon).
      anneal_lr: decay the learning rate linearly to 0 over ``num_updates``.
      normalize_rewards: scale rewards with :func:`scale_rewards` and ``cfg.gamma``.
      axis_name: the mapped axis the environments are split over (gradients, reward
        statistics, advantage statistics and metrics are reduced over it), or None.
      num_envs: ``B``, the environments over every device of ``axis_name`` (default:
        those of ``state.obs``, for a run on one device).

    Returns:
      ``update``; ``metrics`` holds the episode statistics, the learner's metrics,
      ``explained_variance`` and ``learning_rate``.
    """

    def update(state: OnPolicyState, cfg):
        keys = jax.random.split(state.key, 3 if learner.uses_key else 2)
        env_ids = local_env_ids(state.obs.shape[0], axis_name)
        env_state, obs, rollout = collect_rollout(
            act_fn,
            state.params,
            env,
            env_params,
            state.env_state,
            state.obs,
            keys[1],
            num_steps,
            env_ids=env_ids,
            num_envs=num_envs or state.obs.shape[0],
        )
        scaler = state.reward_scaler
        if normalize_rewards:
            rewards, scaler = scale_rewards(
                scaler, rollout.rewards, rollout.done, cfg.gamma, axis_name
            )
            rollout = rollout._replace(rewards=rewards)
        next_values = value_fn(state.params, rollout.next_obs)
        lambda_ = getattr(cfg, "gae_lambda", 1.0)
        advantages, targets = advantage_fn(rollout, next_values, cfg.gamma, lambda_)
        lr = getattr(cfg, learner.rate)
        if anneal_lr:
            lr = lr * (1.0 - state.update_count / num_updates)
        opt_state = set_learning_rate(state.opt_state, lr)
        key = keys[2] if learner.uses_key else None
        params, opt_state, metrics = learner.learn(
            state.params, opt_state, rollout, advantages, targets, cfg, key
        )
        if axis_name is not None:  # per-device means of equal shares: their mean is the whole's
            metrics = jax.lax.pmean(metrics, axis_name)
        metrics = {
            **episode_metrics(rollout, axis_name),
            **metrics,
            "explained_variance": explained_variance(rollout.values, targets, axis_name),
            "learning_rate": jnp.asarray(lr, jnp.float32),
        }
        new_state = OnPolicyState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            obs=obs,
            key=keys[0],
            update_count=state.update_count + 1,
            reward_scaler=scaler,
        )
        return new_state, metrics

    return update


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
    if config.num_envs % num_shards:
        raise ValueError(
            f"num_envs ({config.num_envs}) must be divisible by the number of devices "
            f"({num_shards}) to split one run across them"
        )
    if normalize_obs and num_shards > 1:
        raise ValueError(
            "normalize_obs keeps its statistics per device, so a run split across "
            f"{num_shards} devices would differ from one device; set normalize_obs=False "
            "or run on one device"
        )
    normalize_rewards = getattr(config, "normalize_rewards", False)
    local_envs = config.num_envs // num_shards
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


def check_config(cfg, minibatches: str | None = None) -> None:
    """The checks every on-policy Config shares (raises ``ValueError`` naming the field).

    Positive ``total_timesteps``, ``num_envs``, ``num_steps``; known ``activation`` and
    ``torso``; γ in [0, 1]; ``num_steps`` divisible by the field named ``minibatches``
    (every minibatch takes the same steps of every environment); one update's
    ``num_envs * num_steps`` steps within ``total_timesteps``.
    """
    names = ("total_timesteps", "num_envs", "num_steps") + ((minibatches,) if minibatches else ())
    for name in names:
        require(cfg, name, positive_int)
    require(cfg, "hidden_sizes", positive_ints)
    require(cfg, "activation", one_of("tanh", "relu"))
    require(cfg, "torso", one_of("mlp", "cnn"))
    require(cfg, "gamma", probability)
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
