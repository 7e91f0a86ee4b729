"""Dynamic programming on a finite MDP: Bellman backups, policy evaluation, VI, PI.

Shapes: ``S`` states, ``A`` actions. A policy is ``[S, A]`` probabilities π(a | s)
or ``[S]`` integer actions. The value of a terminal state is 0, so every backup
multiplies the next value by ``(1 − terminal(s'))``:

    Q(s, a) = Σₛ' P(s' | s, a) [R(s, a, s') + γ (1 − terminal(s')) V(s')]

See Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), ch. 4:
http://incompleteideas.net/book/the-book-2nd.html
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.tabular.mdp import FiniteMDP, expected_rewards, policy_matrix

__all__ = [
    "DPResult",
    "EvaluationResult",
    "q_from_values",
    "greedy_policy",
    "greedy_probs",
    "bellman_optimality_backup",
    "bellman_expectation_backup",
    "bellman_residual",
    "policy_evaluation",
    "iterative_policy_evaluation",
    "finite_horizon_evaluation",
    "value_iteration",
    "policy_iteration",
]


class DPResult(NamedTuple):
    """The output of value iteration and policy iteration."""

    values: jax.Array  # [S] V*
    q_values: jax.Array  # [S, A] Q*
    policy: jax.Array  # [S] int32, a greedy policy w.r.t. Q*
    iterations: jax.Array  # [] int32, sweeps (VI) or improvement steps (PI)
    delta: jax.Array  # [] float32, sup-norm change of the last sweep (VI), 0 for PI


class EvaluationResult(NamedTuple):
    """The output of iterative policy evaluation."""

    values: jax.Array  # [S] V^π
    iterations: jax.Array  # [] int32
    delta: jax.Array  # [] float32, sup-norm change of the last sweep


def _masked(q: jax.Array, action_mask: jax.Array | None) -> jax.Array:
    return q if action_mask is None else jnp.where(action_mask, q, -jnp.inf)


def q_from_values(mdp: FiniteMDP, values: jax.Array) -> jax.Array:
    """One-step lookahead: Q(s, a) = Σₛ' P(s'|s,a) [R(s,a,s') + γ (1 − terminal(s')) V(s')].

    Args:
      mdp: the MDP.
      values: ``[S]`` state values V.

    Returns:
      ``[S, A]`` action values, 0 in terminal states.
    """
    cont = 1.0 - mdp.terminal.astype(jnp.float32)
    next_v = mdp.discount * cont * values  # [S']
    q = expected_rewards(mdp) + jnp.einsum("san,n->sa", mdp.transitions, next_v)
    return jnp.where(mdp.terminal[:, None], 0.0, q)


def greedy_policy(q_values: jax.Array, action_mask: jax.Array | None = None) -> jax.Array:
    """Deterministic greedy policy π(s) = argmax_a Q(s, a) over the available actions.

    Ties go to the lowest action index.

    Args:
      q_values: ``[*B, A]`` action values.
      action_mask: ``[*B, A]`` bool available actions, or None for all.

    Returns:
      ``[*B]`` int32 actions.
    """
    return jnp.argmax(_masked(q_values, action_mask), axis=-1).astype(jnp.int32)


def greedy_probs(
    q_values: jax.Array, action_mask: jax.Array | None = None, atol: float = 0.0
) -> jax.Array:
    """Greedy policy that splits ties uniformly: π(a|s) ∝ 1[Q(s,a) ≥ maxₐ' Q(s,a') − atol].

    Args:
      q_values: ``[*B, A]`` action values.
      action_mask: ``[*B, A]`` bool available actions, or None for all.
      atol: values within ``atol`` of the maximum count as ties.

    Returns:
      ``[*B, A]`` float32 probabilities.
    """
    q = _masked(q_values, action_mask)
    best = (q >= q.max(-1, keepdims=True) - atol).astype(jnp.float32)
    return best / best.sum(-1, keepdims=True)


def bellman_optimality_backup(mdp: FiniteMDP, values: jax.Array) -> jax.Array:
    """(T V)(s) = maxₐ Q_V(s, a) over available actions, 0 in terminal states.

    Args:
      mdp: the MDP.
      values: ``[S]``.

    Returns:
      ``[S]`` backed-up values.
    """
    q = _masked(q_from_values(mdp, values), mdp.action_mask)
    return jnp.where(mdp.terminal, 0.0, q.max(-1))


def bellman_expectation_backup(mdp: FiniteMDP, values: jax.Array, policy) -> jax.Array:
    """(T^π V)(s) = Σₐ π(a|s) Q_V(s, a), 0 in terminal states.

    Args:
      mdp: the MDP.
      values: ``[S]``.
      policy: ``[S, A]`` probabilities or ``[S]`` actions.

    Returns:
      ``[S]`` backed-up values.
    """
    pi = policy_matrix(policy, mdp.num_actions)
    return jnp.where(mdp.terminal, 0.0, (pi * q_from_values(mdp, values)).sum(-1))


@jax.jit
def bellman_residual(mdp: FiniteMDP, values: jax.Array, policy=None) -> jax.Array:
    """Sup-norm Bellman residual ‖T V − V‖∞ of a V ``[S]`` or a Q ``[S, A]``.

    With ``policy=None`` T is the optimality operator (max over available
    actions), otherwise the expectation operator of ``policy``. For Q,
    (T Q)(s, a) = Σₛ' P(s'|s,a) [R + γ (1 − terminal(s')) V_Q(s')] with
    V_Q(s') = maxₐ' Q(s', a') or Σₐ' π(a'|s') Q(s', a'). Terminal states and
    unavailable actions are left out.

    Args:
      mdp: the MDP.
      values: ``[S]`` state values or ``[S, A]`` action values.
      policy: None, ``[S, A]`` probabilities or ``[S]`` actions.

    Returns:
      ``[]`` float32 residual.
    """
    live = ~mdp.terminal
    if values.ndim == 1:
        if policy is None:
            new = bellman_optimality_backup(mdp, values)
        else:
            new = bellman_expectation_backup(mdp, values, policy)
        return jnp.max(jnp.where(live, jnp.abs(new - values), 0.0))
    if policy is None:
        v = _masked(values, mdp.action_mask).max(-1)
    else:
        v = (policy_matrix(policy, mdp.num_actions) * values).sum(-1)
    new = q_from_values(mdp, jnp.where(live, v, 0.0))
    ok = live[:, None] & mdp.action_mask
    return jnp.max(jnp.where(ok, jnp.abs(new - values), 0.0))


@jax.jit
def policy_evaluation(mdp: FiniteMDP, policy) -> jax.Array:
    """Exact policy evaluation: solves V = r_π + γ P_π diag(1 − terminal) V.

    V^π = (I − γ P_π D)⁻¹ r_π with D = diag(1 − terminal), and V = 0 on terminal
    states. With γ = 1 the policy must reach a terminal state with probability 1
    (otherwise the system is singular and the values are not finite).

    Args:
      mdp: the MDP.
      policy: ``[S, A]`` probabilities or ``[S]`` actions.

    Returns:
      ``[S]`` float32 values V^π.
    """
    pi = policy_matrix(policy, mdp.num_actions)
    p_pi = jnp.einsum("sa,san->sn", pi, mdp.transitions)
    r_pi = (pi * expected_rewards(mdp)).sum(-1)
    cont = 1.0 - mdp.terminal.astype(jnp.float32)
    eye = jnp.eye(mdp.num_states, dtype=jnp.float32)
    lhs = eye - mdp.discount * p_pi * cont[None, :]
    # A terminal state's row becomes V(s) = 0.
    lhs = jnp.where(mdp.terminal[:, None], eye, lhs)
    rhs = jnp.where(mdp.terminal, 0.0, r_pi)
    return jnp.linalg.solve(lhs, rhs)


@partial(jax.jit, static_argnames=("max_iters",))
def iterative_policy_evaluation(
    mdp: FiniteMDP, policy, tol: float = 1e-6, max_iters: int = 100_000
) -> EvaluationResult:
    """Iterative policy evaluation: V_{k+1} = T^π V_k from V_0 = 0 until ‖V_{k+1} − V_k‖∞ < tol.

    Args:
      mdp: the MDP.
      policy: ``[S, A]`` probabilities or ``[S]`` actions.
      tol: stopping threshold on the sup-norm change of one sweep.
      max_iters: upper bound on the number of sweeps.

    Returns:
      ``EvaluationResult(values [S], iterations [], delta [])``.
    """
    pi = policy_matrix(policy, mdp.num_actions)

    def cond(carry):
        _, i, delta = carry
        return (delta >= tol) & (i < max_iters)

    def body(carry):
        v, i, _ = carry
        new = bellman_expectation_backup(mdp, v, pi)
        return new, i + 1, jnp.max(jnp.abs(new - v))

    init = (jnp.zeros(mdp.num_states), jnp.int32(0), jnp.float32(jnp.inf))
    v, i, delta = jax.lax.while_loop(cond, body, init)
    return EvaluationResult(values=v, iterations=i, delta=delta)


@partial(jax.jit, static_argnames=("horizon",))
def finite_horizon_evaluation(mdp: FiniteMDP, policy, horizon: int) -> jax.Array:
    """Expected return of ``policy`` over at most ``horizon`` steps: V_H = (T^π)^H 0.

    This is exactly the value of a time-limited episode (gymnax truncation after
    ``horizon`` steps), finite even for policies that never terminate; for
    FrozenLake with reward 1 at the goal it is the success probability within
    ``horizon`` steps.

    Args:
      mdp: the MDP.
      policy: ``[S, A]`` probabilities or ``[S]`` actions.
      horizon: H, number of steps.

    Returns:
      ``[S]`` float32 values.
    """
    pi = policy_matrix(policy, mdp.num_actions)
    p_pi = jnp.einsum("sa,san->sn", pi, mdp.transitions)
    p_pi = mdp.discount * p_pi * (1.0 - mdp.terminal.astype(jnp.float32))[None, :]
    r_pi = jnp.where(mdp.terminal, 0.0, (pi * expected_rewards(mdp)).sum(-1))
    live = jnp.where(mdp.terminal, 0.0, 1.0)
    step = lambda _, v: live * (r_pi + p_pi @ v)
    return jax.lax.fori_loop(0, horizon, step, jnp.zeros(mdp.num_states))


@partial(jax.jit, static_argnames=("max_iters",))
def value_iteration(mdp: FiniteMDP, tol: float = 1e-6, max_iters: int = 100_000) -> DPResult:
    """Value iteration: V_{k+1} = T V_k from V_0 = 0 until ‖V_{k+1} − V_k‖∞ < tol.

    On exit the Bellman optimality residual ‖T V − V‖∞ ≤ γ·tol ≤ tol, and with
    γ < 1, ‖V − V*‖∞ ≤ γ·tol / (1 − γ).

    Args:
      mdp: the MDP.
      tol: stopping threshold on the sup-norm change of one sweep.
      max_iters: upper bound on the number of sweeps.

    Returns:
      ``DPResult`` with V ``[S]``, Q ``[S, A]`` and the greedy policy ``[S]``.
    """

    def cond(carry):
        _, i, delta = carry
        return (delta >= tol) & (i < max_iters)

    def body(carry):
        v, i, _ = carry
        new = bellman_optimality_backup(mdp, v)
        return new, i + 1, jnp.max(jnp.abs(new - v))

    init = (jnp.zeros(mdp.num_states), jnp.int32(0), jnp.float32(jnp.inf))
    v, i, delta = jax.lax.while_loop(cond, body, init)
    q = q_from_values(mdp, v)
    return DPResult(v, q, greedy_policy(q, mdp.action_mask), i, delta)


@partial(jax.jit, static_argnames=("max_iters",))
def policy_iteration(mdp: FiniteMDP, max_iters: int = 1_000, atol: float = 1e-5) -> DPResult:
    """Policy iteration: exact evaluation, then greedy improvement, until the policy is stable.

    π_{k+1}(s) = argmaxₐ Q^{π_k}(s, a), keeping π_k(s) when it is within ``atol``
    of the maximum (so ties cannot make it cycle). Starts from the uniform
    policy over available actions, which must be proper when γ = 1.

    Args:
      mdp: the MDP.
      max_iters: upper bound on the number of improvement steps.
      atol: tie tolerance of the improvement step.

    Returns:
      ``DPResult`` with V ``[S]``, Q ``[S, A]``, the policy ``[S]`` and the number of
      improvement steps; ``delta`` is 0.
    """
    mask = mdp.action_mask
    uniform = mask / mask.sum(-1, keepdims=True)
    uniform = jnp.where(mask.any(-1, keepdims=True), uniform, 1.0 / mdp.num_actions)

    def cond(carry):
        _, i, stable = carry
        return ~stable & (i < max_iters)

    def body(carry):
        pi, i, _ = carry
        q = q_from_values(mdp, policy_evaluation(mdp, pi))
        current = jnp.argmax(pi, -1)
        masked = _masked(q, mask)
        keep = jnp.take_along_axis(masked, current[:, None], -1)[:, 0] >= masked.max(-1) - atol
        action = jnp.where(keep, current, greedy_policy(q, mask))
        new = jax.nn.one_hot(action, mdp.num_actions, dtype=jnp.float32)
        return new, i + 1, jnp.all(new == pi)

    pi, i, _ = jax.lax.while_loop(cond, body, (uniform.astype(jnp.float32), 0, False))
    v = policy_evaluation(mdp, pi)
    q = q_from_values(mdp, v)
    return DPResult(v, q, jnp.argmax(pi, -1).astype(jnp.int32), jnp.int32(i), jnp.float32(0.0))
