"""The TRPO trust region: Fisher-vector products, natural step, line search, policy step.

TRPO maximises a surrogate objective L(θ) subject to a bound on the mean KL
divergence from the policy that collected the data:

    maximise L(θ)  subject to  KL̄(θ_old, θ) = E_s[KL(π_old(·|s) ‖ π_θ(·|s))] ≤ δ

Near θ_old the KL is quadratic, ½ ΔθᵀFΔθ, with F the Fisher information (the
Hessian of KL̄ at θ = θ_old). The step is the natural gradient x = F⁻¹g, found
by conjugate gradient with matrix-free products F·v, scaled so that the
quadratic model of the KL equals δ, then shrunk by a backtracking line search
until the true surrogate improves and the true KL is within δ.

See Trust Region Policy Optimization, Schulman et al. 2015:
https://arxiv.org/abs/1502.05477 (Appendix C describes the CG and line search).

Shapes: ``N`` is the number of scalar parameters, the length of
``jax.flatten_util.ravel_pytree(params)[0]``. Parameters may be any pytree; the
solver works on the flat vector ``[N]``.

The callables (``surrogate_fn``, ``kl_fn``, ``matvec``) are traced: every
function here runs under ``jax.jit`` with the callables closed over (or bound
with ``functools.partial``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxrl.core._checks import as_float, check_rank
from jaxrl.core._checks import check_count as _check_count
from jaxrl.core._checks import check_real as _check_real
from jaxrl.core.conjugate_gradient import CGResult, conjugate_gradient
from jaxrl.core.policy import categorical_kl, gaussian_kl, trpo_surrogate

__all__ = [
    "CGResult",
    "LineSearchResult",
    "backtracking_line_search",
    "conjugate_gradient",
    "fisher_vector_product",
    "distribution_params",
    "mean_policy_kl",
    "natural_gradient_step",
    "policy_trust_region_step",
    "trpo_step",
]


class LineSearchResult(NamedTuple):
    """Output of :func:`backtracking_line_search`."""

    params: Any  # pytree like the input params: the accepted params, or the old ones
    accepted: jax.Array  # [] bool, whether some shrunk step was accepted
    num_backtracks: jax.Array  # [] int32, k of the accepted step ratio^k; max_backtracks if none
    improvement: jax.Array  # [] L(new) − L(old); 0 when nothing was accepted
    kl: jax.Array  # [] kl_fn(new); 0 when nothing was accepted (the old params are returned)


def _flat_kl_grad(flat_params, kl_fn, unravel):
    """∇_θ KL̄ at the flat parameter vector, as a flat vector [N]."""
    grads = jax.grad(kl_fn)(unravel(flat_params))
    return ravel_pytree(grads)[0]


def _damped_product(v, hvp, damping, size, dtype):
    """(∇²KL̄)·v + damping·v for a flat v [N]."""
    check_rank(v, 1, "v")
    if v.shape != (size,):
        raise ValueError(
            f"`v` has shape {v.shape} but the flattened params have shape ({size},); "
            "they must be equal"
        )
    v = jnp.asarray(v, dtype)
    return hvp(v) + damping * v


def fisher_vector_product(
    kl_fn: Callable[[Any], jax.Array], params: Any, damping: float = 0.1
) -> Callable[[jax.Array], jax.Array]:
    """Returns v ↦ F v + damping·v, F the Hessian of the mean KL at ``params``.

        F v = ∇_θ (∇_θ KL̄(θ) · v)  evaluated at θ = params,
        KL̄(θ) = E_s[KL(π_old(·|s) ‖ π_θ(·|s))]

    At θ = θ_old the Hessian of KL̄ equals the Fisher information matrix
    E[∇log π ∇log πᵀ], so this is the Fisher-vector product TRPO needs, without
    ever forming the N×N matrix. It is computed forward-over-reverse: the
    gradient of KL̄ is linearised once (``jax.linearize`` of the reverse-mode
    gradient) and each product is a JVP through it, so the many products of a
    CG solve share one linearisation. ``damping`` adds λI, which keeps the
    system well conditioned when F is singular (for example a softmax's
    redundant logit direction).

    See Schulman et al. 2015, Appendix C.1: https://arxiv.org/abs/1502.05477, and
    Pearlmutter 1994, Fast exact multiplication by the Hessian,
    https://doi.org/10.1162/neco.1994.6.1.147

    Args:
      kl_fn: params ↦ scalar mean KL(π_old ‖ π_params), with π_old held fixed
        (its logits computed outside or under ``stop_gradient``).
      params: the pytree at which F is taken (normally θ_old).
      damping: λ ≥ 0 added on the diagonal (scalar).

    Returns:
      A function from a flat vector v [N] (ordered as ``ravel_pytree(params)``)
      to F v + λ v [N].
    """
    _check_real(damping, "damping", low=0.0)
    flat, unravel = ravel_pytree(params)
    grad_fn = functools.partial(_flat_kl_grad, kl_fn=kl_fn, unravel=unravel)
    _, hvp = jax.linearize(grad_fn, flat)
    return functools.partial(
        _damped_product, hvp=hvp, damping=damping, size=flat.size, dtype=flat.dtype
    )


def natural_gradient_step(
    grad: Any,
    fvp: Callable[[jax.Array], jax.Array],
    max_kl: float,
    cg_iters: int = 10,
    residual_tol: float = 1e-10,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The largest natural-gradient step whose quadratic KL model equals ``max_kl``.

        x = F⁻¹g (by CG),   step = √(2δ / xᵀFx) · x,   so ½ stepᵀF step = δ

    See Schulman et al. 2015, Appendix C: https://arxiv.org/abs/1502.05477

    Args:
      grad: gradient g of the surrogate (to maximise), a flat vector [N] or a
        pytree (flattened with ``ravel_pytree``).
      fvp: v ↦ F v on flat vectors [N], e.g. from :func:`fisher_vector_product`.
      max_kl: δ > 0, the KL bound (scalar).
      cg_iters: CG iterations (a Python int ≥ 1).
      residual_tol: CG stops once ‖r‖² ≤ residual_tol.

    Returns:
      ``(step, info)``: the flat step [N], and a dict of scalars:
      ``cg_residual`` (‖g − F x‖ from CG), ``cg_iterations`` (int32),
      ``expected_improvement`` (gᵀstep, the linear model's gain) and
      ``quadratic_kl`` (½ stepᵀF step, δ unless g = 0).
    """
    _check_real(max_kl, "max_kl", low=0.0, low_open=True)
    _check_count(cg_iters, "cg_iters", 1)
    g = ravel_pytree(grad)[0]
    cg = conjugate_gradient(fvp, g, max_iters=cg_iters, residual_tol=residual_tol)
    shs = jnp.vdot(cg.x, fvp(cg.x))
    # shs = xᵀFx > 0 for a positive-definite F and x ≠ 0; x = 0 (zero gradient) gives no step.
    scale = jnp.where(shs > 0, jnp.sqrt(2.0 * max_kl / jnp.where(shs > 0, shs, 1.0)), 0.0)
    step = (scale * cg.x).astype(g.dtype)
    info = {
        "cg_residual": cg.residual_norm,
        "cg_iterations": cg.iterations,
        "expected_improvement": jnp.vdot(g, step),
        "quadratic_kl": 0.5 * scale**2 * shs,
    }
    return step, info


def _ls_cond(state, max_backtracks):
    k, accepted = state[0], state[1]
    return (~accepted) & (k < max_backtracks)


def _ls_body(state, old_flat, step, unravel, surrogate_fn, kl_fn, surrogate_old, ratio, max_kl):
    k, _, _, _, _ = state
    candidate = old_flat + (ratio**k) * step
    new_params = unravel(candidate)
    improvement = surrogate_fn(new_params) - surrogate_old
    kl = kl_fn(new_params)
    ok = (improvement > 0) & (kl <= max_kl) & jnp.isfinite(improvement) & jnp.isfinite(kl)
    # On success k stays at the accepted index (the loop then stops).
    return jnp.where(ok, k, k + 1), ok, candidate, improvement, kl


def backtracking_line_search(
    params: Any,
    step_flat: jax.Array,
    surrogate_fn: Callable[[Any], jax.Array],
    kl_fn: Callable[[Any], jax.Array],
    max_kl: float,
    backtrack_ratio: float = 0.5,
    max_backtracks: int = 10,
    surrogate_old: jax.Array | None = None,
) -> LineSearchResult:
    """Shrinks a step until the surrogate improves and the KL stays within the bound.

    Tries θₖ = θ + ratioᵏ · step for k = 0, 1, …, max_backtracks − 1 and
    accepts the first with L(θₖ) > L(θ) (strictly) and KL̄(θₖ) ≤ δ, both
    finite. If none passes, the old params come back with ``accepted`` False.
    Runs in a ``lax.while_loop`` that stops at the first accepted step.

    See Schulman et al. 2015, Appendix C: https://arxiv.org/abs/1502.05477

    Args:
      params: current (old) params, a pytree.
      step_flat: full step [N] in ``ravel_pytree(params)`` order.
      surrogate_fn: params ↦ scalar surrogate L to maximise.
      kl_fn: params ↦ scalar mean KL(π_old ‖ π_params).
      max_kl: δ > 0.
      backtrack_ratio: shrink factor in (0, 1).
      max_backtracks: number of step sizes tried (a Python int ≥ 1).
      surrogate_old: L(params) when already known (saves one evaluation).

    Returns:
      LineSearchResult(params, accepted [] bool, num_backtracks [] int32,
      improvement [], kl []).
    """
    _check_real(max_kl, "max_kl", low=0.0, low_open=True)
    _check_real(
        backtrack_ratio, "backtrack_ratio", low=0.0, high=1.0, low_open=True, high_open=True
    )
    _check_count(max_backtracks, "max_backtracks", 1)
    old_flat, unravel = ravel_pytree(params)
    step_flat = as_float(step_flat, "step_flat")
    check_rank(step_flat, 1, "step_flat")
    if step_flat.shape != old_flat.shape:
        raise ValueError(
            f"`step_flat` has shape {step_flat.shape} but the flattened `params` have shape "
            f"{old_flat.shape}; they must be equal"
        )
    step_flat = step_flat.astype(old_flat.dtype)
    if surrogate_old is None:
        surrogate_old = surrogate_fn(params)
    surrogate_old = jnp.asarray(surrogate_old)
    zero = jnp.zeros((), surrogate_old.dtype)
    init = (jnp.asarray(0, jnp.int32), jnp.asarray(False), old_flat, zero, zero)
    body = functools.partial(
        _ls_body,
        old_flat=old_flat,
        step=step_flat,
        unravel=unravel,
        surrogate_fn=surrogate_fn,
        kl_fn=kl_fn,
        surrogate_old=surrogate_old,
        ratio=jnp.asarray(backtrack_ratio, old_flat.dtype),
        max_kl=max_kl,
    )
    k, accepted, candidate, improvement, kl = jax.lax.while_loop(
        functools.partial(_ls_cond, max_backtracks=max_backtracks), body, init
    )
    flat = jnp.where(accepted, candidate, old_flat)
    return LineSearchResult(
        params=unravel(flat),
        accepted=accepted,
        num_backtracks=k,
        improvement=jnp.where(accepted, improvement, 0.0).astype(zero.dtype),
        kl=jnp.where(accepted, kl, 0.0).astype(zero.dtype),
    )


def trpo_step(
    params: Any,
    surrogate_fn: Callable[[Any], jax.Array],
    kl_fn: Callable[[Any], jax.Array],
    max_kl: float,
    damping: float = 0.1,
    cg_iters: int = 10,
    backtrack_ratio: float = 0.5,
    max_backtracks: int = 10,
    residual_tol: float = 1e-10,
) -> tuple[Any, dict[str, jax.Array]]:
    """One TRPO policy update: gradient, natural step by CG, backtracking line search.

        g = ∇L(θ),  x = (F + λI)⁻¹ g,  step = √(2δ / xᵀ(F + λI)x) · x,
        θ' = θ + ratioᵏ · step for the first k with L(θ') > L(θ) and KL̄(θ') ≤ δ

    See Trust Region Policy Optimization, Schulman et al. 2015:
    https://arxiv.org/abs/1502.05477

    Args:
      params: policy params θ_old, a pytree.
      surrogate_fn: params ↦ scalar surrogate to MAXIMISE, usually
        E[π_θ(a|s)/π_old(a|s) · Â].
      kl_fn: params ↦ scalar mean KL(π_old ‖ π_params) with π_old fixed.
      max_kl: δ > 0, the trust-region radius.
      damping: λ ≥ 0 added to the Fisher matrix.
      cg_iters: CG iterations (Python int ≥ 1).
      backtrack_ratio: line-search shrink factor in (0, 1).
      max_backtracks: step sizes tried (Python int ≥ 1).
      residual_tol: CG stops once ‖r‖² ≤ residual_tol.

    Returns:
      ``(new_params, metrics)``: new_params like params (the old ones if the
      line search failed); metrics a dict of float32 scalars: ``kl``
      (KL̄ of the new params, 0 if rejected), ``improvement`` (L(new) − L(old)),
      ``expected_improvement`` (gᵀstep), ``num_backtracks``, ``accepted``
      (1.0 or 0.0, so that it averages into an acceptance rate),
      ``cg_residual``, ``cg_iterations`` and ``surrogate`` (L(old)).
    """
    _check_real(max_kl, "max_kl", low=0.0, low_open=True)
    _check_real(damping, "damping", low=0.0)
    surrogate_old, grads = jax.value_and_grad(surrogate_fn)(params)
    fvp = fisher_vector_product(kl_fn, params, damping)
    step, info = natural_gradient_step(
        grads, fvp, max_kl, cg_iters=cg_iters, residual_tol=residual_tol
    )
    ls = backtracking_line_search(
        params,
        step,
        surrogate_fn,
        kl_fn,
        max_kl,
        backtrack_ratio=backtrack_ratio,
        max_backtracks=max_backtracks,
        surrogate_old=surrogate_old,
    )
    metrics = {
        "kl": ls.kl,
        "improvement": ls.improvement,
        "expected_improvement": info["expected_improvement"],
        "num_backtracks": ls.num_backtracks,
        "accepted": ls.accepted,
        "cg_residual": info["cg_residual"],
        "cg_iterations": info["cg_iterations"],
        "surrogate": surrogate_old,
    }
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    return ls.params, metrics


def distribution_params(dist) -> dict[str, jax.Array]:
    """The arrays of a categorical (``logits``) or diagonal-Gaussian (``loc``, ``scale_diag``)
    distribution: ``{"logits"}`` or ``{"mean", "log_std"}``, each ``[N, A]``."""
    if hasattr(dist, "logits"):
        return {"logits": dist.logits}
    return {"mean": dist.loc, "log_std": jnp.log(dist.scale_diag)}


def mean_policy_kl(old: dict[str, jax.Array], dist) -> jax.Array:
    """KL̄ = mean_s KL(π_old(·|s) ‖ π(·|s)), π_old given by :func:`distribution_params`
    (held fixed: no gradient flows into it) and π by the distribution ``dist`` at the same
    ``N`` states."""
    new, old = distribution_params(dist), jax.lax.stop_gradient(old)
    if "logits" in old:
        return categorical_kl(old["logits"], new["logits"]).mean()
    return gaussian_kl(old["mean"], old["log_std"], new["mean"], new["log_std"]).mean()


def policy_trust_region_step(
    policy_params: Any,
    dist_fn: Callable[[Any, jax.Array], Any],
    batch: dict[str, jax.Array],
    max_kl: float,
    **step_kwargs,
) -> tuple[Any, dict[str, jax.Array]]:
    """:func:`trpo_step` for a policy ``dist_fn(params, obs) -> distribution``.

    The surrogate is ``trpo_surrogate(log π_θ(a|s), log π_old(a|s), Â)`` and the
    constraint :func:`mean_policy_kl` from the distribution at ``policy_params``.

    Args:
      policy_params: θ_old.
      dist_fn: ``(params, obs [N, *obs]) ->`` a categorical or diagonal-Gaussian
        distribution with ``log_prob``.
      batch: ``obs [N, *obs]``, ``actions [N, *act]``, ``log_probs [N]`` (log π_old)
        and ``advantages [N]``.
      max_kl: δ.
      **step_kwargs: :func:`trpo_step`'s ``damping``, ``cg_iters``, ``backtrack_ratio``,
        ``max_backtracks``, ``residual_tol``.

    Returns:
      ``(new_policy_params, metrics)``: :func:`trpo_step`'s metrics, with ``kl`` and
      ``surrogate_new`` measured again on the returned parameters (the old ones when the
      line search rejected every step).
    """
    old = distribution_params(dist_fn(policy_params, batch["obs"]))

    def kl_fn(params):
        return mean_policy_kl(old, dist_fn(params, batch["obs"]))

    def surrogate_fn(params):
        log_probs = dist_fn(params, batch["obs"]).log_prob(batch["actions"])
        return trpo_surrogate(log_probs, batch["log_probs"], batch["advantages"])

    new_params, metrics = trpo_step(policy_params, surrogate_fn, kl_fn, max_kl, **step_kwargs)
    return new_params, {
        **metrics,
        "kl": kl_fn(new_params),
        "surrogate_new": surrogate_fn(new_params),
    }
