"""Conjugate gradient: solves A x = b for a symmetric positive-definite A given v ↦ A v.

TRPO's natural step (:mod:`jaxrl.core.trust_region`) solves F x = g with it, F the
Fisher information, through Fisher-vector products; nothing here is specific to
TRPO. Shapes: ``N`` is the length of the flat vector.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float, check_rank
from jaxrl.core._checks import check_count as _check_count
from jaxrl.core._checks import check_real as _check_real

__all__ = ["CGResult", "conjugate_gradient"]


class CGResult(NamedTuple):
    """Output of :func:`conjugate_gradient`."""

    x: jax.Array  # [N] approximate solution of A x = b
    residual_norm: jax.Array  # [] ‖r‖ = ‖b − A x‖ as tracked by the CG recursion
    iterations: jax.Array  # [] int32, CG iterations taken (≤ max_iters)


def _cg_cond(state, max_iters, residual_tol):
    _, _, _, rr, i = state
    return (i < max_iters) & (rr > residual_tol)


def _cg_body(state, matvec):
    x, r, p, rr, i = state
    ap = matvec(p)
    pap = jnp.vdot(p, ap)
    # Zero curvature only happens when p = 0 (then rr = 0 and the loop has stopped) or when
    # the operator is not positive definite; a zero step keeps the result finite.
    alpha = jnp.where(pap > 0, rr / jnp.where(pap > 0, pap, 1.0), 0.0)
    x = x + alpha * p
    r = r - alpha * ap
    rr_new = jnp.vdot(r, r)
    beta = rr_new / jnp.where(rr > 0, rr, 1.0)
    p = r + beta * p
    return x, r, p, rr_new, i + 1


def conjugate_gradient(
    matvec: Callable[[jax.Array], jax.Array],
    b: jax.Array,
    max_iters: int = 10,
    residual_tol: float = 1e-10,
) -> CGResult:
    """Solves A x = b for a symmetric positive-definite A given only v ↦ A v.

    Starting from x₀ = 0, r₀ = p₀ = b:
        αₖ = rₖᵀrₖ / pₖᵀApₖ,  xₖ₊₁ = xₖ + αₖpₖ,  rₖ₊₁ = rₖ − αₖApₖ,
        βₖ = rₖ₊₁ᵀrₖ₊₁ / rₖᵀrₖ,  pₖ₊₁ = rₖ₊₁ + βₖpₖ
    stopping after ``max_iters`` iterations or once ‖rₖ‖² ≤ ``residual_tol``
    (the squared norm, as in the TRPO paper's implementation). Runs in a
    ``lax.while_loop``, so it is jittable and stops early; it is not
    reverse-mode differentiable (TRPO does not need it to be).

    See Hestenes & Stiefel 1952, https://doi.org/10.6028/jres.049.044, and
    Schulman et al. 2015, Appendix C: https://arxiv.org/abs/1502.05477

    Args:
      matvec: function [N] → [N] computing A v for a symmetric positive-definite A.
      b: right-hand side [N].
      max_iters: most iterations (a Python int ≥ 1; fixes the loop bound).
      residual_tol: stop once ‖r‖² ≤ residual_tol (≥ 0).

    Returns:
      CGResult(x [N], residual_norm [], iterations [] int32).
    """
    _check_count(max_iters, "max_iters", 1)
    _check_real(residual_tol, "residual_tol", low=0.0)
    b = as_float(b, "b")
    check_rank(b, 1, "b")
    rr = jnp.vdot(b, b)
    tol = jnp.asarray(residual_tol, rr.dtype)
    init = (jnp.zeros_like(b), b, b, rr, jnp.asarray(0, jnp.int32))
    x, _, _, rr, iterations = jax.lax.while_loop(
        functools.partial(_cg_cond, max_iters=max_iters, residual_tol=tol),
        functools.partial(_cg_body, matvec=matvec),
        init,
    )
    return CGResult(x=x, residual_norm=jnp.sqrt(rr), iterations=iterations)
