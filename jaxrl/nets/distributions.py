"""Distributions returned by the policy heads."""

from __future__ import annotations

import distrax
import jax

__all__ = ["DiagGaussian"]


class DiagGaussian(distrax.Independent):
    """Diagonal Gaussian N(loc, diag(scale_diag²)) over the last axis (event shape [A]).

        log p(x) = Σᵢ [−(xᵢ − locᵢ)²/(2σᵢ²) − log σᵢ − ½·log 2π]

    The same distribution as ``distrax.MultivariateNormalDiag`` (same ``loc``,
    ``scale_diag``, ``log_prob``, ``entropy``, ``kl_divergence`` between two
    ``DiagGaussian``), built as ``Independent(Normal, 1)`` because distrax's
    MultivariateNormalDiag cannot be returned from ``jax.jit`` (it leaks tracers)
    or ``jax.vmap`` (stale batch shape): https://github.com/google-deepmind/distrax/issues/230
    and https://github.com/google-deepmind/distrax/issues/276.

    Args:
      loc: [*N, A] means.
      scale_diag: [*N, A] standard deviations (> 0).
    """

    def __init__(self, loc: jax.Array, scale_diag: jax.Array):
        super().__init__(distrax.Normal(loc, scale_diag), reinterpreted_batch_ndims=1)

    @property
    def loc(self) -> jax.Array:
        """Means [*N, A]."""
        return self.distribution.loc

    @property
    def scale_diag(self) -> jax.Array:
        """Standard deviations [*N, A]."""
        return self.distribution.scale
