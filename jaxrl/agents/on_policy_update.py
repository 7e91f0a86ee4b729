"""One on-policy update: a rollout, its advantages, one learning step (:func:`make_update`).

::

    rollout = collect num_steps steps of num_envs environments   (rollout.collect_rollout)
    rollout = rewards / running std of the return                   (normalize_rewards, traced γ)
    A, G    = advantage_fn(rollout, V(s'), γ, λ)                    (GAE, n-step, Monte Carlo …)
    params  = learner.learn(params, opt_state, rollout, A, G, …)    (gradient epochs, trust region)

The update owns the state (:class:`OnPolicyState`), the keys, the learning rate (an
``optax.inject_hyperparams`` hyperparameter set from the traced config each update,
linearly annealed on request) and the metrics. :func:`loss_learner` makes the
:class:`Learner` of a loss: ``num_epochs`` passes of ``num_minibatches`` gradient
steps (``jaxrl.core.run_epochs``), or one step on the whole rollout. With
``axis_name`` the gradients, the reward-scaling statistics and the metrics are
reduced over that axis (see :mod:`jaxrl.agents.on_policy`).

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

from jaxrl.agents.rollout import (
    collect_rollout,
    episode_metrics,
    explained_variance,
    local_env_ids,
    run_epochs,
)
from jaxrl.core.normalize import reward_scaler_update

__all__ = [
    "Learner",
    "OnPolicyState",
    "gradient_step",
    "loss_learner",
    "make_update",
    "scale_rewards",
    "set_learning_rate",
    "with_learning_rate",
]


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
    rate: str = "learning_rate",
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
      rate: the Config field of the learning rate.
    """

    def tx(cfg):
        return with_learning_rate(make_transform(cfg), getattr(cfg, rate))

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

    return Learner(init=init, learn=learn, uses_key=num_epochs > 0, rate=rate)


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
