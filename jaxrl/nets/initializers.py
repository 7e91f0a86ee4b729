"""An orthogonal initialiser whose ``vmap`` runs one QR after another.

``jax.nn.initializers.orthogonal`` draws a Gaussian matrix and takes its QR
decomposition. Under ``jax.vmap`` (one network per seed) that QR becomes a
batched LAPACK call, which jaxlib (0.10.2, CPU) spreads over its intra-op thread
pool; on a 2-thread pool two of them running at once can each wait for the
other's thread and hang for ever. Here the QR carries its own batching rule, a
``lax.map`` of the unbatched QR: the same numbers as jax's initialiser, seed by
seed, and no batched LAPACK call. Initialisation is a small part of a run, so
the sequential QR costs little.

See Saxe et al. 2014, Exact solutions to the nonlinear dynamics of learning in
deep linear neural networks: https://arxiv.org/abs/1312.6120 and Mezzadri 2007,
How to generate random matrices from the classical compact groups:
https://arxiv.org/abs/math-ph/0609050
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["orthogonal", "sequential_qr"]


@jax.custom_batching.custom_vmap
def sequential_qr(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``jnp.linalg.qr(a)`` (reduced) of one matrix ``a [M, N]``; under ``vmap`` the
    matrices are decomposed one after another (``lax.map``), never as a batched LAPACK call.

    Returns:
      ``(q [M, K], r [K, N])`` with ``K = min(M, N)``.
    """
    q, r = jnp.linalg.qr(a)
    return q, r


@sequential_qr.def_vmap
def _sequential_qr_vmap(axis_size, in_batched, a):
    del axis_size, in_batched  # the only argument is batched whenever this rule runs
    return jax.lax.map(sequential_qr, a), (True, True)


def orthogonal(scale: float = 1.0, column_axis: int = -1):
    """The initialiser of ``jax.nn.initializers.orthogonal(scale, column_axis)``, vmap-safe.

    W = scale · Q, with Q from the QR decomposition Z = Q·R of a standard normal Z,
    its columns' signs set so that diag(R) > 0 (Q is then uniform on the orthogonal
    group). A non-square shape gets orthonormal rows or columns, whichever side is
    smaller. For one key the result equals jax's initialiser bit for bit.

    Returns:
      ``init(key, shape, dtype=float32) -> [*shape]``.
    """

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"orthogonal initializer requires at least a 2D shape, got {shape}")
        if any(d == 0 for d in shape):
            return jnp.zeros(shape, dtype)
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        z = jax.random.normal(key, (max(n_rows, n_cols), min(n_rows, n_cols)), dtype)
        q, r = sequential_qr(z)
        q = q * jnp.expand_dims(jnp.sign(jnp.diagonal(r)), -2)
        if n_rows < n_cols:
            q = q.T
        q = jnp.reshape(q, tuple(np.delete(shape, column_axis)) + (n_cols,))
        q = jnp.moveaxis(q, -1, column_axis)
        return jnp.array(scale, dtype) * q

    return init
