"""Returns and advantage estimators over time-major rollouts.

Shapes: ``T`` is the rollout length (axis 0, the axis every function scans over)
and ``*B`` any number of batch axes (environments, seeds, ...). Every argument
is ``[T, *B]`` unless stated; ``gamma`` and ``lambda_`` are scalars or arrays
that broadcast to ``[T, *B]``.

Episode ends are two things, kept apart everywhere here:

* ``terminated[t]``: step t reached a true terminal state. Nothing is
  bootstrapped after it: the one-step target is ``r_t``.
* ``done[t] = terminated[t] or truncated[t]``: the episode ended at step t, for
  whatever reason. Recursions over time (GAE, λ-returns, n-step sums) never
  cross it. Where an episode was *truncated* (a time limit), the target
  bootstraps from ``next_values[t]``, the value of the real final observation.

``next_values[t]`` is ``V(s'_t)`` for the real next state of step t: the
final observation where step t ended an episode (gymnax 1.0's
``info["final_observation"]``), otherwise the next observation. The end of the
rollout is treated like a truncation: the last step bootstraps from
``next_values[T-1]``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float, check_broadcastable, check_min_rank, check_same_shape

__all__ = [
    "VTraceOutput",
    "discounted_returns",
    "gae",
    "lambda_returns",
    "n_step_returns",
    "vtrace",
]


def _prepare(arrays: dict, scalars: dict):
    """Checks shapes, casts to float and broadcasts the scalar-like arguments."""
    first = next(iter(arrays))
    check_min_rank(arrays[first], 1, first)
    check_same_shape(arrays)
    shape = jnp.shape(arrays[first])
    out = {k: as_float(v, k) for k, v in arrays.items()}
    dtype = jnp.result_type(*[out[k] for k in arrays if k not in ("terminated", "done")])
    out = {k: v.astype(dtype) for k, v in out.items()}
    for name, value in scalars.items():
        check_broadcastable(value, shape, name, first)
        out[name] = jnp.broadcast_to(as_float(value, name), shape).astype(dtype)
    return out


def _continues(done: jax.Array) -> jax.Array:
    """1 where a recursion may look one step ahead: inside an episode, before the rollout ends."""
    cont = 1.0 - done
    return cont.at[-1].set(0.0)


def _reverse_scan(step_fn, init, xs):
    _, out = jax.lax.scan(step_fn, init, xs, reverse=True)
    return out


def lambda_returns(
    rewards,
    next_values,
    terminated,
    done,
    gamma,
    lambda_,
    stop_target_gradients: bool = True,
) -> jax.Array:
    """λ-returns, cut at episode ends, bootstrapped where an episode is truncated.

    Gᵗ = rₜ + γₜ (1 − termₜ) [(1 − λₜ cₜ) V(s'ₜ) + λₜ cₜ Gₜ₊₁],  cₜ = 1 − doneₜ (0 at t = T−1)

    With λ = 1 this is the discounted Monte Carlo return (bootstrapped only where
    the episode is truncated or the rollout ends); with λ = 0 it is the one-step
    TD target rₜ + γ (1 − termₜ) V(s'ₜ).

    See Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), §12.1:
    http://incompleteideas.net/book/the-book-2nd.html

    Args:
      rewards: ``[T, *B]`` reward of each step.
      next_values: ``[T, *B]`` value of the real next state of each step.
      terminated: ``[T, *B]`` 1 where the step reached a true terminal state.
      done: ``[T, *B]`` 1 where the step ended its episode (terminated or truncated).
      gamma: discount, scalar or broadcastable to ``[T, *B]``.
      lambda_: mixing parameter in [0, 1], scalar or broadcastable to ``[T, *B]``.
      stop_target_gradients: stop gradients flowing through the returned targets.

    Returns:
      ``[T, *B]`` λ-returns.
    """
    a = _prepare(
        dict(rewards=rewards, next_values=next_values, terminated=terminated, done=done),
        dict(gamma=gamma, lambda_=lambda_),
    )
    discount = a["gamma"] * (1.0 - a["terminated"])
    lam_cont = a["lambda_"] * _continues(a["done"])

    def step(g_next, x):
        r, nv, disc, lc = x
        g = r + disc * ((1.0 - lc) * nv + lc * g_next)
        return g, g

    out = _reverse_scan(
        step, jnp.zeros_like(a["rewards"][0]), (a["rewards"], a["next_values"], discount, lam_cont)
    )
    return jax.lax.stop_gradient(out) if stop_target_gradients else out


def discounted_returns(
    rewards, next_values, terminated, done, gamma, stop_target_gradients: bool = True
) -> jax.Array:
    """Discounted returns of each step to the end of its episode or of the rollout.

    Gₜ = rₜ + γₜ (1 − termₜ) [(1 − cₜ) V(s'ₜ) + cₜ Gₜ₊₁],  cₜ = 1 − doneₜ (0 at t = T−1)

    A terminated episode adds nothing after its last reward; a truncated episode
    and the rollout's last step bootstrap from ``next_values``. Equal to
    ``lambda_returns`` with λ = 1.

    See Sutton & Barto (2nd ed.), §3.3: http://incompleteideas.net/book/the-book-2nd.html

    Args:
      rewards, next_values, terminated, done: ``[T, *B]`` (see the module docstring).
      gamma: discount, scalar or broadcastable to ``[T, *B]``.
      stop_target_gradients: stop gradients flowing through the returned targets.

    Returns:
      ``[T, *B]`` returns.
    """
    return lambda_returns(rewards, next_values, terminated, done, gamma, 1.0, stop_target_gradients)


def n_step_returns(
    rewards, next_values, terminated, done, gamma, n: int, stop_target_gradients: bool = True
) -> jax.Array:
    """n-step returns: n rewards, then the bootstrapped value, never crossing an episode end.

    Gₜ⁽ⁿ⁾ = Σₖ₌₀^{m−1} (Πⱼ₌₀^{k−1} γₜ₊ⱼ) rₜ₊ₖ + (Πⱼ₌₀^{m−1} γₜ₊ⱼ) (1 − termₜ₊ₘ₋₁) V(s'ₜ₊ₘ₋₁)

    where m ≤ n is cut short by the first step that ends the episode (doneₜ₊ₘ₋₁)
    or by the end of the rollout. With n ≥ T this equals ``discounted_returns``.

    See Sutton & Barto (2nd ed.), §7.1: http://incompleteideas.net/book/the-book-2nd.html

    Args:
      rewards, next_values, terminated, done: ``[T, *B]``.
      gamma: discount, scalar or broadcastable to ``[T, *B]``.
      n: number of steps, a Python int ≥ 1 (static).
      stop_target_gradients: stop gradients flowing through the returned targets.

    Returns:
      ``[T, *B]`` n-step returns.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be a Python int >= 1, got {n!r}")
    a = _prepare(
        dict(rewards=rewards, next_values=next_values, terminated=terminated, done=done),
        dict(gamma=gamma),
    )
    T = a["rewards"].shape[0]
    horizon = min(n, T)
    # Stop after step t+k when the episode ends there or the rollout does.
    stop = jnp.maximum(a["done"], jnp.zeros_like(a["done"]).at[-1].set(1.0))

    def pad(x):
        return jnp.concatenate([x, jnp.zeros_like(x)], axis=0)

    padded = [pad(a[k]) for k in ("rewards", "next_values", "terminated", "gamma")] + [pad(stop)]

    def body(k, carry):
        g, alive, disc = carry
        r, nv, term, gam, stp = (jax.lax.dynamic_slice_in_dim(x, k, T) for x in padded)
        stp = jnp.where(k == horizon - 1, 1.0, stp)
        g = g + alive * disc * r
        g = g + alive * stp * disc * gam * (1.0 - term) * nv
        return g, alive * (1.0 - stp), disc * gam

    zeros = jnp.zeros_like(a["rewards"])
    g, _, _ = jax.lax.fori_loop(0, horizon, body, (zeros, zeros + 1.0, zeros + 1.0))
    return jax.lax.stop_gradient(g) if stop_target_gradients else g


def gae(
    rewards,
    values,
    next_values,
    terminated,
    done,
    gamma,
    lambda_,
    stop_target_gradients: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation, cut at episode ends.

    δₜ = rₜ + γₜ (1 − termₜ) V(s'ₜ) − V(sₜ)
    Aₜ = δₜ + γₜ λₜ cₜ Aₜ₊₁,  cₜ = 1 − doneₜ (0 at t = T−1)

    A truncated step keeps the bootstrap V(s'ₜ) of its real final observation in
    δₜ; a terminated one does not. Targets for the critic are Aₜ + V(sₜ).

    See Schulman et al., High-Dimensional Continuous Control Using Generalized
    Advantage Estimation: https://arxiv.org/abs/1506.02438

    Args:
      rewards: ``[T, *B]``.
      values: ``[T, *B]`` V(sₜ).
      next_values: ``[T, *B]`` V(s'ₜ) of the real next state.
      terminated, done: ``[T, *B]`` episode-end flags.
      gamma, lambda_: scalars or broadcastable to ``[T, *B]``.
      stop_target_gradients: stop gradients flowing through both outputs.

    Returns:
      ``(advantages, targets)``, each ``[T, *B]``, with targets = advantages + values.
    """
    a = _prepare(
        dict(
            rewards=rewards,
            values=values,
            next_values=next_values,
            terminated=terminated,
            done=done,
        ),
        dict(gamma=gamma, lambda_=lambda_),
    )
    deltas = a["rewards"] + a["gamma"] * (1.0 - a["terminated"]) * a["next_values"] - a["values"]
    decay = a["gamma"] * a["lambda_"] * _continues(a["done"])

    def step(adv_next, x):
        delta, d = x
        adv = delta + d * adv_next
        return adv, adv

    advantages = _reverse_scan(step, jnp.zeros_like(deltas[0]), (deltas, decay))
    targets = advantages + a["values"]
    if stop_target_gradients:
        advantages, targets = jax.lax.stop_gradient((advantages, targets))
    return advantages, targets


class VTraceOutput(NamedTuple):
    """Outputs of ``vtrace``."""

    vs: jax.Array  # [T, *B] V-trace value targets
    pg_advantages: jax.Array  # [T, *B] advantages for the policy gradient


def vtrace(
    values,
    next_values,
    rewards,
    terminated,
    done,
    log_rhos,
    gamma,
    lambda_=1.0,
    clip_rho=1.0,
    clip_c=1.0,
    stop_target_gradients: bool = True,
) -> VTraceOutput:
    """V-trace off-policy value targets and policy-gradient advantages.

    ρₜ = min(ρ̄, e^{log ρₜ}),  cₜ = λ min(c̄, e^{log ρₜ})
    δₜ = ρₜ (rₜ + γ (1 − termₜ) V(s'ₜ) − V(sₜ))
    vₛₜ − V(sₜ) = δₜ + γ (1 − doneₜ) cₜ (vₛₜ₊₁ − V(sₜ₊₁))
    Aₜ = ρₜ (rₜ + γ (1 − termₜ) qₜ − V(sₜ)),  qₜ = V(s'ₜ) + λ (1 − doneₜ)(vₛₜ₊₁ − V(s'ₜ))

    Recursions stop at episode ends and at the rollout's last step, which
    bootstrap from ``next_values``. ``log_rhos`` = log π(aₜ|sₜ) − log μ(aₜ|sₜ)
    for the target policy π and the behaviour policy μ.

    See Espeholt et al., IMPALA: https://arxiv.org/abs/1802.01561

    Args:
      values: ``[T, *B]`` V(sₜ).
      next_values: ``[T, *B]`` V(s'ₜ) of the real next state.
      rewards, terminated, done: ``[T, *B]``.
      log_rhos: ``[T, *B]`` log importance ratios.
      gamma, lambda_: scalars or broadcastable to ``[T, *B]``.
      clip_rho: ρ̄, clips the ratios in δ and in the advantages.
      clip_c: c̄, clips the trace coefficients.
      stop_target_gradients: stop gradients flowing through both outputs.

    Returns:
      ``VTraceOutput(vs, pg_advantages)``, each ``[T, *B]``.
    """
    a = _prepare(
        dict(
            values=values,
            next_values=next_values,
            rewards=rewards,
            terminated=terminated,
            done=done,
            log_rhos=log_rhos,
        ),
        dict(gamma=gamma, lambda_=lambda_),
    )
    rhos = jnp.exp(a["log_rhos"])
    clipped_rhos = jnp.minimum(clip_rho, rhos)
    cs = a["lambda_"] * jnp.minimum(clip_c, rhos)
    discount = a["gamma"] * (1.0 - a["terminated"])
    cont = _continues(a["done"])
    deltas = clipped_rhos * (a["rewards"] + discount * a["next_values"] - a["values"])

    def step(err_next, x):
        delta, g, cnt, c = x
        err = delta + g * cnt * c * err_next
        return err, err

    errors = _reverse_scan(step, jnp.zeros_like(deltas[0]), (deltas, a["gamma"], cont, cs))
    vs = a["values"] + errors
    vs_next = jnp.concatenate([vs[1:], jnp.zeros_like(vs[:1])], axis=0)
    q = a["next_values"] + a["lambda_"] * cont * (vs_next - a["next_values"])
    pg_advantages = clipped_rhos * (a["rewards"] + discount * q - a["values"])
    if stop_target_gradients:
        vs, pg_advantages = jax.lax.stop_gradient((vs, pg_advantages))
    return VTraceOutput(vs=vs, pg_advantages=pg_advantages)
