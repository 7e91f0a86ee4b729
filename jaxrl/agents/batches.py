"""From a rollout to the learner's batches: statistics over the mapped axis and minibatches.

Shapes: ``T`` rollout length (``num_steps``), ``B`` environments (``num_envs``),
``Bₗ`` the environments one device holds when a run is split over a mesh axis
(``B / D`` of them, with global indices ``env_ids``), ``M`` minibatches, ``E`` epochs.

Every statistic takes an ``axis_name``: with one, the means and sums are those of
the environments of every device (``pmean``/``psum``), so D devices compute the
one-device statistic. Each minibatch holds ``T / M`` steps of every environment,
shuffled with a key derived from the environment's global index
(:func:`stratified_minibatches`), so a device holds its exact share of every
minibatch of the one-device run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from jaxrl.agents.rollout import Rollout

__all__ = [
    "actor_critic_batch",
    "episode_metrics",
    "explained_variance",
    "run_epochs",
    "standardize",
    "stratified_minibatches",
]


def _mean(x: jax.Array, axis_name: str | None) -> jax.Array:
    """Mean of every element on every device of ``axis_name`` (each holds as many)."""
    m = jnp.mean(x)
    return m if axis_name is None else jax.lax.pmean(m, axis_name)


def _sum(x: jax.Array, axis_name: str | None) -> jax.Array:
    s = jnp.sum(x)
    return s if axis_name is None else jax.lax.psum(s, axis_name)


def _var(x: jax.Array, axis_name: str | None) -> jax.Array:
    return _mean(jnp.square(x - _mean(x, axis_name)), axis_name)


def standardize(
    x: jax.Array, mask: jax.Array | None = None, eps: float = 1e-8, axis_name: str | None = None
) -> jax.Array:
    """(x − mean) / (std + eps) over all elements, or over those where ``mask`` is non-zero.

    With ``axis_name`` the mean and std are those of the elements of every device.
    """
    if mask is None:
        mean = _mean(x, axis_name)
        return (x - mean) / (jnp.sqrt(_mean(jnp.square(x - mean), axis_name)) + eps)
    weight = mask.astype(x.dtype)
    count = jnp.maximum(_sum(weight, axis_name), 1.0)
    mean = _sum(x * weight, axis_name) / count
    std = jnp.sqrt(_sum(jnp.square(x - mean) * weight, axis_name) / count)
    return (x - mean) / (std + eps)


def episode_metrics(rollout: Rollout, axis_name: str | None = None) -> dict[str, jax.Array]:
    """Mean return and length of the episodes that finished in ``rollout`` (NaN if none did),
    over the environments of every device of ``axis_name``."""
    finished = rollout.returned.astype(jnp.float32)
    count = _sum(finished, axis_name)
    safe = jnp.maximum(count, 1.0)
    ret = jnp.where(count > 0, _sum(rollout.episode_return * finished, axis_name) / safe, jnp.nan)
    length = _sum(rollout.episode_length * finished, axis_name)
    length = jnp.where(count > 0, length / safe, jnp.nan)
    return {"episode_return": ret, "episode_length": length, "episodes": count}


def explained_variance(
    predictions: jax.Array, targets: jax.Array, axis_name: str | None = None
) -> jax.Array:
    """1 − Var[targets − predictions] / Var[targets]: 1 is perfect, ≤ 0 is a constant's skill."""
    var = _var(targets, axis_name)
    return jnp.where(var > 0, 1.0 - _var(targets - predictions, axis_name) / var, jnp.nan)


def actor_critic_batch(rollout: Rollout, advantages: jax.Array, targets: jax.Array) -> dict:
    """The arrays an actor-critic loss reads (PPO, A2C), each ``[T, B, ...]``: ``obs``,
    ``actions``, ``log_probs`` and ``values`` of the behaviour policy, ``advantages``,
    ``targets``."""
    return {
        "obs": rollout.obs,
        "actions": rollout.actions,
        "log_probs": rollout.log_probs,
        "values": rollout.values,
        "advantages": advantages,
        "targets": targets,
    }


def stratified_minibatches(
    key: jax.Array, batch: Any, num_minibatches: int, env_ids: jax.Array | None = None
) -> Any:
    """``[T, Bₗ, ...]`` leaves → ``[M, T/M·Bₗ, ...]``: each environment's T steps in its own
    random order, the m-th T/M of them in minibatch m.

    Environment i's order is ``permutation(fold_in(key, i), T)`` with i its global index
    (``env_ids``, default ``arange(Bₗ)``), so a device holding some of the environments
    holds its exact share of every minibatch of the one-device run. Each minibatch is
    flattened time-major (``[T/M, Bₗ]`` → ``T/M·Bₗ`` samples).
    """
    leaves = jax.tree.leaves(batch)
    t, num_local = leaves[0].shape[:2]
    if t % num_minibatches:
        raise ValueError(
            f"num_steps ({t}) must be divisible by the number of minibatches ({num_minibatches})"
        )
    ids = jnp.arange(num_local) if env_ids is None else env_ids
    perms = jax.vmap(lambda i: jax.random.permutation(jax.random.fold_in(key, i), t))(ids)
    cols = jnp.arange(num_local)

    def arrange(x):
        x = x[perms.T, cols]  # [T, Bₗ, ...]: row s holds x[perms[b, s], b]
        return x.reshape((num_minibatches, -1) + x.shape[2:])

    return jax.tree.map(arrange, batch)


def run_epochs(
    key: jax.Array,
    carry: Any,
    batch: Any,
    minibatch_update: Callable[[Any, Any], tuple[Any, dict]],
    num_epochs: int,
    num_minibatches: int,
    env_ids: jax.Array | None = None,
) -> tuple[Any, dict]:
    """``num_epochs`` passes over a time-major ``[T, Bₗ, ...]`` batch in
    :func:`stratified_minibatches`, one ``minibatch_update(carry, minibatch)`` each.

    Epoch e shuffles with ``jax.random.split(key, E)[e]``.

    Returns:
      ``(carry, metrics)`` with every metric averaged over all ``E·M`` steps.
    """

    def epoch(carry, epoch_key):
        minibatches = stratified_minibatches(epoch_key, batch, num_minibatches, env_ids)
        return jax.lax.scan(minibatch_update, carry, minibatches)

    carry, metrics = jax.lax.scan(epoch, carry, jax.random.split(key, num_epochs))
    return carry, jax.tree.map(jnp.mean, metrics)
