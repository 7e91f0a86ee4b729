"""Tabular TD updates, Q[s, a] ← Q[s, a] + α·δ, with δ from ``jaxrl.core.value``.

The targets are the same functions the deep agents use (``q_learning``,
``sarsa``, ``expected_sarsa``, ``double_q_learning``, ``n_step_returns``); here
they act on one row of a table instead of a network's output.

Shapes: ``S`` states, ``A`` actions, ``n`` the n-step window. Every function
handles one transition (scalars ``s, a, r, s'``); ``jax.vmap`` batches them.
``discount = γ·(1 − terminated)``: zero when s' is a true terminal, γ after a
time-limit truncation (which bootstraps from the real final state s').
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core.exploration import boltzmann_probs, epsilon_greedy_probs
from jaxrl.core.returns import n_step_returns
from jaxrl.core.value import double_q_learning, expected_sarsa, q_learning, sarsa

__all__ = [
    "QTables",
    "NStepWindow",
    "policy_probs",
    "step_size",
    "q_learning_update",
    "sarsa_update",
    "expected_sarsa_update",
    "double_q_update",
    "n_step_window",
    "n_step_sarsa_update",
]


class QTables(NamedTuple):
    """The learner's tables."""

    q: jax.Array  # [S, A] action values (Q^A for double Q-learning)
    q2: jax.Array  # [S, A] Q^B for double Q-learning; unused (zeros) otherwise
    visits: jax.Array  # [S, A] float32 visit counts N(s, a)


class NStepWindow(NamedTuple):
    """The last n transitions of the current episode, oldest first, for n-step SARSA."""

    s: jax.Array  # [n] int32 states
    a: jax.Array  # [n] int32 actions
    r: jax.Array  # [n] float32 rewards
    s_next: jax.Array  # [n] int32 real next states
    a_next: jax.Array  # [n] int32 next actions (behaviour policy)
    terminated: jax.Array  # [n] bool
    done: jax.Array  # [n] bool, terminated or truncated
    valid: jax.Array  # [n] bool, slot holds a transition not yet updated


def policy_probs(
    q_row: jax.Array,
    mask_row: jax.Array,
    exploration: str,
    epsilon,
    temperature,
) -> jax.Array:
    """ε-greedy or Boltzmann probabilities over the available actions of one state.

    ε-greedy: π(a) = ε·m(a)/Σm + (1 − ε)·1[a ∈ argmax Q]/|argmax Q| (ties share);
    Boltzmann: π(a) ∝ m(a)·exp(Q(a)/τ). m is the action mask; with every action
    available these are ``core.exploration``'s ε-greedy and Boltzmann policies.

    Args:
      q_row: ``[*B, A]`` action values.
      mask_row: ``[*B, A]`` bool available actions.
      exploration: ``"epsilon-greedy"`` or ``"boltzmann"``.
      epsilon: ε (traced scalar).
      temperature: τ > 0 (traced scalar).

    Returns:
      ``[*B, A]`` float32 probabilities.
    """
    masked = jnp.where(mask_row, q_row, -jnp.inf)
    if exploration == "boltzmann":
        return boltzmann_probs(masked, temperature)
    greedy = epsilon_greedy_probs(masked, 0.0)
    uniform = mask_row / mask_row.sum(-1, keepdims=True)
    return (1.0 - epsilon) * greedy + epsilon * uniform


def step_size(visits_sa: jax.Array, alpha, alpha_power, schedule: str) -> jax.Array:
    """α = alpha (``"constant"``) or α = alpha · N(s, a)^(−ω) (``"visit-count"``).

    With ω ∈ (1/2, 1] the visit-count step sizes satisfy Σα = ∞, Σα² < ∞, the
    Robbins–Monro conditions under which tabular Q-learning converges to Q*
    (Watkins & Dayan 1992; Even-Dar & Mansour 2003, https://jmlr.org/papers/v5/evendar03a.html).

    Args:
      visits_sa: ``[]`` visits of (s, a), counting the current one.
      alpha: base step size.
      alpha_power: ω.
      schedule: ``"constant"`` or ``"visit-count"``.

    Returns:
      ``[]`` float32 step size.
    """
    if schedule == "constant":
        return jnp.asarray(alpha, jnp.float32)
    return alpha * jnp.maximum(visits_sa, 1.0) ** (-alpha_power)


def _apply(table: jax.Array, s, a, alpha, td: jax.Array) -> jax.Array:
    return table.at[s, a].add(alpha * td)


def q_learning_update(tables: QTables, s, a, r, discount, s_next, mask, alpha) -> QTables:
    """Q(s,a) += α [r + discount · maxₐ' Q(s',a') − Q(s,a)], max over available a'.

    Args:
      tables: ``QTables``.
      s, a, r, discount, s_next: the transition (scalars).
      mask: ``[S, A]`` bool available actions.
      alpha: step size.

    Returns:
      Updated ``QTables``.
    """
    q_next = jnp.where(mask[s_next], tables.q[s_next], -jnp.inf)
    td = q_learning(tables.q[s], a, r, discount, q_next)
    return tables._replace(q=_apply(tables.q, s, a, alpha, td))


def sarsa_update(tables: QTables, s, a, r, discount, s_next, a_next, alpha) -> QTables:
    """Q(s,a) += α [r + discount · Q(s',a') − Q(s,a)] with a' the behaviour's next action.

    Args:
      tables: ``QTables``.
      s, a, r, discount, s_next, a_next: the transition and the next action (scalars).
      alpha: step size.

    Returns:
      Updated ``QTables``.
    """
    td = sarsa(tables.q[s], a, r, discount, tables.q[s_next], a_next)
    return tables._replace(q=_apply(tables.q, s, a, alpha, td))


def expected_sarsa_update(tables: QTables, s, a, r, discount, s_next, probs, alpha) -> QTables:
    """Q(s,a) += α [r + discount · Σₐ' π(a'|s') Q(s',a') − Q(s,a)].

    Args:
      tables: ``QTables``.
      s, a, r, discount, s_next: the transition (scalars).
      probs: ``[A]`` target-policy probabilities π(·|s').
      alpha: step size.

    Returns:
      Updated ``QTables``.
    """
    td = expected_sarsa(tables.q[s], a, r, discount, tables.q[s_next], probs)
    return tables._replace(q=_apply(tables.q, s, a, alpha, td))


def double_q_update(tables: QTables, key, s, a, r, discount, s_next, mask, alpha) -> QTables:
    """Double Q-learning: with probability 1/2 update Q^A toward r + γ Q^B(s', argmax Q^A(s',·)),
    otherwise Q^B with the roles swapped.

    See van Hasselt, Double Q-learning (NeurIPS 2010):
    https://papers.nips.cc/paper/3964-double-q-learning

    Args:
      tables: ``QTables`` with Q^A = ``q`` and Q^B = ``q2``.
      key: PRNG key for the coin flip.
      s, a, r, discount, s_next: the transition (scalars).
      mask: ``[S, A]`` bool available actions.
      alpha: step size.

    Returns:
      Updated ``QTables``.
    """
    first = jax.random.bernoulli(key)
    upd, other = jnp.where(first, tables.q, tables.q2), jnp.where(first, tables.q2, tables.q)
    selector = jnp.where(mask[s_next], upd[s_next], -jnp.inf)
    td = double_q_learning(upd[s], a, r, discount, other[s_next], selector)
    new = _apply(upd, s, a, alpha, td)
    return tables._replace(q=jnp.where(first, new, tables.q), q2=jnp.where(first, tables.q2, new))


def n_step_window(n: int) -> NStepWindow:
    """An empty window of ``n`` transitions."""
    zi, zf, zb = jnp.zeros(n, jnp.int32), jnp.zeros(n, jnp.float32), jnp.zeros(n, bool)
    return NStepWindow(zi, zi, zf, zi, zi, zb, zb, zb)


def _push(window: NStepWindow, *transition) -> NStepWindow:
    return NStepWindow(
        *(
            jnp.append(x[1:], jnp.asarray(v, x.dtype))
            for x, v in zip(window, (*transition, True), strict=True)
        )
    )


def _update_slot(j, carry, gamma):
    tables, window, alpha_fn = carry
    next_values = tables.q[window.s_next, window.a_next]
    returns = n_step_returns(
        window.r, next_values, window.terminated, window.done, gamma, window.r.shape[0]
    )
    s, a = window.s[j], window.a[j]
    alpha = jnp.where(window.valid[j], alpha_fn[s, a], 0.0)
    q = tables.q.at[s, a].add(alpha * (returns[j] - tables.q[s, a]))
    return tables._replace(q=q), window, alpha_fn


def n_step_sarsa_update(
    tables: QTables, window: NStepWindow, transition: tuple, gamma, alphas: jax.Array
) -> tuple[QTables, NStepWindow]:
    """n-step SARSA (Sutton & Barto §7.2): pushes a transition and updates the transitions due.

        G = Σₖ₌₀^{m−1} γᵏ rₜ₊ₖ + γᵐ (1 − terminatedₜ₊ₘ₋₁) Q(sₜ₊ₘ, aₜ₊ₘ),  m = min(n, steps left)

    A transition is updated once it is n steps old, or, when the episode ends,
    together with every other transition still in the window (oldest first, each
    target read from the current Q). A truncated episode bootstraps from
    Q(s', a') of its real final state; a terminated one does not.

    Args:
      tables: ``QTables``.
      window: ``NStepWindow`` of length n.
      transition: ``(s, a, r, s_next, a_next, terminated, done)`` scalars.
      gamma: γ.
      alphas: ``[S, A]`` step sizes to use for each (s, a).

    Returns:
      ``(tables, window)``; the window is emptied when ``done``.
    """
    window = _push(window, *transition)
    done = transition[-1]
    full = window.valid[0]
    # The regular update touches slot 0 only; at the episode end every valid slot.
    due = jnp.where(done, window.valid, jnp.zeros_like(window.valid).at[0].set(full))
    tables, _, _ = jax.lax.fori_loop(
        0,
        window.r.shape[0],
        lambda j, c: _update_slot(j, c, gamma),
        (tables, window._replace(valid=due), alphas),
    )
    window = window._replace(valid=jnp.where(done, False, window.valid.at[0].set(False)))
    return tables, window
