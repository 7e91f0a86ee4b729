"""The data side of the on-policy loop: environments, per-environment keys, rollouts, advantages.

The acting networks live in :mod:`jaxrl.agents.actors` and the batch statistics and
minibatches in :mod:`jaxrl.agents.batches`; both are re-exported here.

Shapes: ``T`` rollout length (``num_steps``), ``B`` environments (``num_envs``),
``Bₗ`` the environments one device holds when a run is split over a mesh axis
(``B / D`` of them, with global indices ``env_ids``).

Every random draw that concerns one environment (its resets, its steps, its
action, the order of its samples in the minibatches) comes from a key derived
from that environment's global index (:func:`env_keys`), and each minibatch holds
``T / M`` steps of every environment
(:func:`~jaxrl.agents.batches.stratified_minibatches`); so a run
whose environments are split over D devices draws the same numbers as the run
on one device, and statistics reduced with ``axis_name`` (``pmean``/``psum``)
are those of the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxrl import envs
from jaxrl.agents.actors import *  # noqa: F403 (the acting networks, re-exported)
from jaxrl.agents.actors import __all__ as _actors_all
from jaxrl.agents.batches import *  # noqa: F403 (statistics and minibatches, re-exported)
from jaxrl.agents.batches import __all__ as _batches_all
from jaxrl.core.returns import discounted_returns, gae, n_step_returns

__all__ = [
    *_actors_all,
    *_batches_all,
    "AdvantageFn",
    "Rollout",
    "collect_rollout",
    "complete_episode_mask",
    "env_keys",
    "gae_advantages",
    "local_env_ids",
    "make_env",
    "monte_carlo_advantages",
    "n_step_advantages",
]


class Rollout(NamedTuple):
    """A time-major batch of transitions from ``B`` environments."""

    obs: jax.Array  # [T, B, *obs] observation the action was taken in
    actions: jax.Array  # [T, B, *act]
    log_probs: jax.Array  # [T, B] log π_old(a|s) of the behaviour policy
    values: jax.Array  # [T, B] V(s) under the behaviour parameters
    rewards: jax.Array  # [T, B]
    terminated: jax.Array  # [T, B] bool: true terminal state reached
    truncated: jax.Array  # [T, B] bool: time limit reached
    next_obs: jax.Array  # [T, B, *obs] real next observation (the final one where done)
    returned: jax.Array  # [T, B] bool: an episode ended at this step
    episode_return: jax.Array  # [T, B] return of that episode (valid where returned)
    episode_length: jax.Array  # [T, B] its length (valid where returned)

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class AdvantageFn(Protocol):
    """``(rollout, next_values [T, B], γ, λ) -> (advantages [T, B], value targets [T, B])``.

    The advantage estimator of an on-policy agent (``gae_advantages``,
    ``n_step_advantages``, ``monte_carlo_advantages``, or a user's own);
    γ and λ may be traced.
    """

    def __call__(
        self, rollout: Rollout, next_values: jax.Array, gamma: Any, lambda_: Any
    ) -> tuple[jax.Array, jax.Array]: ...


def make_env(
    env_id: str,
    num_envs: int,
    *,
    normalize_obs: bool = False,
    normalize_rewards: bool = False,
    gamma: float = 0.99,
    env_kwargs: dict | None = None,
    per_env_keys: bool = False,
):
    """Builds ``num_envs`` copies of ``env_id`` stepped as one batch, with episode statistics.

    Order of wrappers (inner to outer): batch, clip continuous actions to the
    action space, episode statistics (of the raw rewards), observation
    normalisation, and with ``normalize_rewards`` return-based reward scaling with
    a fixed ``gamma``. The agents leave ``normalize_rewards`` off here:
    :func:`make_update` scales the rollout's rewards with each config's traced γ.
    With ``per_env_keys``, ``reset`` and ``step`` take one key per environment
    (``[B, 2]``, see :func:`env_keys`) instead of one key that the batch splits.

    Returns:
      ``(env, env_params, action_info)``.
    """
    env, env_params = envs.make(env_id, **(env_kwargs or {}))
    info = envs.action_info(env, env_params)
    env = (_KeyedVecEnv if per_env_keys else envs.VecEnv)(env, num_envs)
    if not info.discrete:
        env = envs.ClipAction(env)
    env = envs.EpisodeStatistics(env)
    if normalize_obs:
        env = envs.NormalizeObservation(env)
    if normalize_rewards:
        env = envs.ScaleReward(env, gamma)
    return env, env_params, info


class _KeyedVecEnv(envs.VecEnv):
    """``envs.VecEnv`` whose ``reset``/``step`` take the environments' own keys ``[B, 2]``."""

    def reset(self, keys: jax.Array, params: Any = None) -> tuple[Any, Any]:
        return jax.vmap(self._env.reset, in_axes=(0, None))(keys, self._params(params))

    def step(self, keys: jax.Array, state: Any, action: Any, params: Any = None):
        obs, state, reward, terminated, truncated, info = jax.vmap(
            self._env.step, in_axes=(0, 0, 0, None)
        )(keys, state, action, self._params(params))
        done = (jnp.asarray(terminated).astype(bool), jnp.asarray(truncated).astype(bool))
        return obs, state, jnp.asarray(reward, jnp.float32), *done, info


def local_env_ids(num_local: int, axis_name: str | None = None) -> jax.Array:
    """Global indices ``[Bₗ]`` of the environments this device holds (``arange`` without an axis).

    Device d of the mapped axis ``axis_name`` holds environments ``d·Bₗ … (d+1)·Bₗ − 1``.
    """
    offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * num_local
    return offset + jnp.arange(num_local)


def env_keys(key: jax.Array, num_envs: int, env_ids: jax.Array | None = None) -> jax.Array:
    """Environment i's key, ``split(key, B)[i]``, for ``env_ids`` (all B if None): ``[Bₗ, 2]``.

    The same on whichever device holds environment i (as ``envs.VecEnv`` splits a key).
    """
    keys = jax.random.split(key, num_envs)
    return keys if env_ids is None else keys[env_ids]


def collect_rollout(
    policy_fn: Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]],
    params: Any,
    env: Any,
    env_params: Any,
    env_state: Any,
    obs: jax.Array,
    key: jax.Array,
    num_steps: int,
    *,
    env_ids: jax.Array | None = None,
    num_envs: int | None = None,
) -> tuple[Any, jax.Array, Rollout]:
    """Steps the batched environment ``num_steps`` times with ``policy_fn``.

    Args:
      policy_fn: ``(params, obs [B, *obs], key) -> (actions [B, *act], log_probs [B], values [B])``.
      params: the behaviour parameters.
      env, env_params, env_state, obs: the batched environment (see :func:`make_env`).
      key: PRNG key for actions and environment steps.
      num_steps: ``T``.
      env_ids: global indices ``[Bₗ]`` of the environments: then each environment acts
        and steps with its own key (:func:`env_keys`; ``policy_fn`` is called on one
        observation at a time under ``vmap``) and ``env`` must take per-environment
        keys (``make_env(per_env_keys=True)``). None: one key for the whole batch.
      num_envs: ``B``, all environments (over every device) that ``env_ids`` index.

    Returns:
      ``(env_state, obs, rollout)`` with the environment state and observation after the rollout.
    """
    if env_ids is None:
        act = policy_fn
    else:

        def one_env(params, obs, key):
            out = policy_fn(params, obs[None], key)
            return jax.tree.map(lambda x: x[0], out)

        def act(params, obs, key):
            keys = env_keys(key, num_envs, env_ids)
            return jax.vmap(one_env, in_axes=(None, 0, 0))(params, obs, keys)

    def step(carry, step_key):
        env_state, obs = carry
        act_key, env_key = jax.random.split(step_key)
        actions, log_probs, values = act(params, obs, act_key)
        if env_ids is not None:
            env_key = env_keys(env_key, num_envs, env_ids)
        next_obs, env_state, rewards, terminated, truncated, info = env.step(
            env_key, env_state, actions, env_params
        )
        real_next = envs.real_next_obs(next_obs, terminated, truncated, info)
        transition = Rollout(
            obs=obs,
            actions=actions,
            log_probs=log_probs,
            values=values,
            rewards=rewards.astype(jnp.float32),
            terminated=terminated,
            truncated=truncated,
            next_obs=real_next,
            returned=info["returned_episode"],
            episode_return=info["episode_return"],
            episode_length=info["episode_length"],
        )
        return (env_state, next_obs), transition

    (env_state, obs), rollout = jax.lax.scan(
        step, (env_state, obs), jax.random.split(key, num_steps)
    )
    return env_state, obs, rollout


def gae_advantages(
    rollout: Rollout, next_values: jax.Array, gamma, lambda_
) -> tuple[jax.Array, jax.Array]:
    """The default :data:`AdvantageFn`: GAE(γ, λ) with terminated and truncated kept apart."""
    return gae(
        rollout.rewards,
        rollout.values,
        next_values,
        rollout.terminated,
        rollout.done,
        gamma,
        lambda_,
    )


def monte_carlo_advantages(
    rollout: Rollout, next_values: jax.Array, gamma, lambda_=None
) -> tuple[jax.Array, jax.Array]:
    """An :data:`AdvantageFn` for REINFORCE: Monte Carlo returns minus the baseline.

        Gₜ = rₜ + γ(1 − termₜ)[(1 − cₜ)V(s'ₜ) + cₜGₜ₊₁],  cₜ = 1 − doneₜ (0 at t = T−1)
        Aₜ = Gₜ − V(sₜ)

    Each return runs to the end of its episode; it bootstraps from ``next_values``
    only where the episode was truncated or cut by the rollout's end (pass zeros
    for no bootstrap). ``lambda_`` is ignored (it is GAE with λ = 1).

    Returns:
      ``(advantages [T, B], returns [T, B])``.
    """
    returns = discounted_returns(
        rollout.rewards, next_values, rollout.terminated, rollout.done, gamma
    )
    return returns - rollout.values, returns


def n_step_advantages(
    rollout: Rollout, next_values: jax.Array, gamma, lambda_=None, *, n: int
) -> tuple[jax.Array, jax.Array]:
    """An :data:`AdvantageFn` for A2C: n-step returns minus the values (bind ``n`` with partial).

        Gₜ⁽ⁿ⁾ = rₜ + γrₜ₊₁ + … + γᵐ⁻¹rₜ₊ₘ₋₁ + γᵐ(1 − termₜ₊ₘ₋₁)V(s'ₜ₊ₘ₋₁),  Aₜ = Gₜ⁽ⁿ⁾ − V(sₜ)

    m ≤ n stops at an episode end or at the rollout's end; with n ≥ T every step
    bootstraps from the rollout's end, as in Mnih et al. 2016 (A3C/A2C):
    https://arxiv.org/abs/1602.01783. ``lambda_`` is ignored.

    Returns:
      ``(advantages [T, B], returns [T, B])``.
    """
    returns = n_step_returns(
        rollout.rewards, next_values, rollout.terminated, rollout.done, gamma, n
    )
    return returns - rollout.values, returns


def complete_episode_mask(rollout: Rollout) -> jax.Array:
    """1.0 at the steps whose episode ends (terminated or truncated) inside the rollout.

        maskₜ = max_{t' ≥ t} doneₜ'   (per environment)

    The return-to-go of such a step needs no cut at the rollout's end; the
    steps after an environment's last episode end get 0. Episodes that began in
    an earlier rollout still count (a return-to-go does not need the start).

    Returns:
      ``[T, B]`` float32.
    """
    return jax.lax.cummax(rollout.done.astype(jnp.float32), axis=0, reverse=True)
