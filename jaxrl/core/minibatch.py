"""Epochs of shuffled minibatches: the one scan every on-policy learner runs over a batch.

PPO, A2C, REINFORCE and TRPO's value regression (``jaxrl.agents.on_policy``) and
the language-model roles (``jaxrl.llm``) all take a batch of ``N`` samples, pass
over it ``E`` times (epochs), reshuffled each time, in ``M`` minibatches of
``N / M`` samples, and take one step per minibatch. This module is that loop,
once. It knows nothing about networks or optimisers: the step is a function the
caller passes in.

Shapes: ``N`` samples, ``E`` epochs (``num_epochs``), ``M`` minibatches
(``num_minibatches``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["run_epochs", "shuffled_minibatches"]


def _num_samples(batch: Any) -> int:
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("`batch` holds no arrays")
    n = leaves[0].shape[0]
    for leaf in leaves:
        if leaf.shape[:1] != (n,):
            raise ValueError(
                f"every array of `batch` must have the sample axis N = {n} first, got {leaf.shape}"
            )
    return n


def shuffled_minibatches(key: jax.Array, batch: Any, num_minibatches: int) -> Any:
    """Shuffles the ``N`` samples of ``batch`` and splits them into ``[M, N/M, ...]``.

    Args:
      key: PRNG key of the permutation.
      batch: a pytree of ``[N, ...]`` arrays (None leaves are skipped).
      num_minibatches: ``M``, a static int dividing ``N``.

    Returns:
      the pytree with every leaf ``[M, N/M, ...]``.
    """
    n = _num_samples(batch)
    if n % num_minibatches:
        raise ValueError(
            f"batch samples ({n}) must be divisible by num_minibatches ({num_minibatches})"
        )
    perm = jax.random.permutation(key, n)
    return jax.tree.map(
        lambda x: jnp.take(x, perm, axis=0).reshape((num_minibatches, -1) + x.shape[1:]), batch
    )


def run_epochs(
    key: jax.Array,
    carry: Any,
    batch: Any,
    minibatch_step: Callable[[Any, Any], tuple[Any, dict]],
    num_epochs: int,
    num_minibatches: int,
) -> tuple[Any, dict]:
    """``E`` passes over ``batch``, reshuffled each time, in ``M`` steps of ``minibatch_step``.

        for e in 1..E: for each minibatch b of shuffle_e(batch): carry ← step(carry, b)

    Args:
      key: PRNG key; epoch e shuffles with ``jax.random.split(key, E)[e]``.
      carry: what the steps update, e.g. ``(params, opt_state)``.
      batch: a pytree of ``[N, ...]`` arrays.
      minibatch_step: ``(carry, minibatch) -> (carry, metrics)``, e.g. one gradient step.
      num_epochs, num_minibatches: ``E`` and ``M``, static ints.

    Returns:
      ``(carry, metrics)`` with every metric averaged over all ``E·M`` steps.
    """

    def epoch(carry, epoch_key):
        minibatches = shuffled_minibatches(epoch_key, batch, num_minibatches)
        return jax.lax.scan(minibatch_step, carry, minibatches)

    carry, metrics = jax.lax.scan(epoch, carry, jax.random.split(key, num_epochs))
    return carry, jax.tree.map(jnp.mean, metrics)
