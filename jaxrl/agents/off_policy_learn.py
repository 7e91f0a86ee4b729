"""Learning-step pieces of the off-policy agents: Adam with a traced rate, target updates.

The learning rate goes through optax (``optax.inject_hyperparams``, see
:func:`jaxrl.agents.on_policy.with_learning_rate`): it is held in the optimiser state,
so a sweep over it (``[R]`` rates under ``vmap``) stays one compiled program.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrl.agents.on_policy import with_learning_rate

__all__ = [
    "adam",
    "apply_updates",
    "clip_norm",
    "discount",
    "polyak_update",
    "positive_or_inf",
    "target_update",
]


def discount(transitions, gamma) -> jax.Array:
    """The one-step discount γ·(1 − terminated) ``[N]``: a terminated step does not bootstrap,
    a truncated one does (its ``next_obs`` is the real next observation)."""
    return gamma * (1.0 - transitions.terminated.astype(jnp.float32))


def polyak_update(target: Any, online: Any, tau) -> Any:
    """Soft target update, θ' ← τ·θ + (1 − τ)·θ' (τ = 1 copies).

    See Lillicrap et al., Continuous control with deep RL: https://arxiv.org/abs/1509.02971
    """
    return jax.tree.map(lambda t, o: t + tau * (o - t), target, online)


def target_update(target: Any, online: Any, step: jax.Array, tau, interval: int) -> Any:
    """Polyak update of the target every ``interval`` steps (``step`` counts from 1).

    ``interval = 1, τ < 1`` is a soft update every step; ``interval = K, τ = 1`` is DQN's
    hard copy every K steps. ``interval`` is static (a Python int).
    """
    if interval == 1:
        return polyak_update(target, online, tau)
    due = step % interval == 0
    return jax.tree.map(lambda t, o: jnp.where(due, t + tau * (o - t), t), target, online)


def positive_or_inf(v) -> str | None:
    """Config check: a number > 0, where ``math.inf`` means "no limit"."""
    ok = isinstance(v, numbers.Real) and v > 0 and not math.isnan(v)
    return None if ok else "a number > 0 (math.inf for no limit)"


def clip_norm(max_grad_norm):
    """``max_grad_norm`` for :func:`adam`, or None (no clipping op) for a Python ``inf``.

    A traced value (a swept hyperparameter) is always applied; inf then leaves the
    gradient unchanged, as skipping does.
    """
    if isinstance(max_grad_norm, numbers.Real) and math.isinf(max_grad_norm):
        return None
    return max_grad_norm


def adam(learning_rate, max_grad_norm=None, eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam with step size ``learning_rate`` (traced, held in the optimiser state), after
    global-norm clipping when ``max_grad_norm`` is given: θ ← θ − lr · adam(clip(g)).

    See Kingma & Ba, Adam: https://arxiv.org/abs/1412.6980

    With or without clipping the optimiser state has the same structure (clipping and
    its stand-in, the identity, keep no state), so a state built with one works with the
    other. The rate used is the one the state was initialised with."""
    clip = optax.identity() if max_grad_norm is None else optax.clip_by_global_norm(max_grad_norm)
    return with_learning_rate(optax.chain(clip, optax.scale_by_adam(eps=eps)), learning_rate)


def apply_updates(params, grads, opt_state, tx: optax.GradientTransformation):
    """One optimiser step of ``tx`` (from :func:`adam`); returns ``(params, opt_state)``."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
