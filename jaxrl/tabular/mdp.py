"""A finite Markov decision process stored as arrays.

Shapes: ``S`` is the number of states, ``A`` the number of actions (the largest
number available in any state; ``action_mask`` says which exist where).

An episode ends when it *enters* a terminal state: a terminal state has value 0
and its outgoing transitions are never used (the builders make them absorbing
with zero reward so that the rows of ``P`` still sum to 1). A discount of 1 is
allowed for episodic tasks (Cliff Walking, FrozenLake) as long as the policies
of interest reach a terminal state with probability 1.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = [
    "FiniteMDP",
    "validate_mdp",
    "expected_rewards",
    "policy_matrix",
    "random_mdp",
]


@struct.dataclass
class FiniteMDP:
    """A finite MDP ``(S, A, P, R, γ, μ₀)`` with terminal states and per-state action sets.

    Build one with :meth:`FiniteMDP.create`, which checks it; the plain constructor
    does not (it is what ``jax.vmap`` and ``jax.tree`` use, and what
    :func:`random_mdp` uses for MDPs that are valid by construction).

    See Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), ch. 3:
    http://incompleteideas.net/book/the-book-2nd.html
    """

    transitions: jax.Array  # [S, A, S] P(s' | s, a)
    rewards: jax.Array  # [S, A, S] mean reward of the transition s, a → s'
    discount: jax.Array  # [] γ
    initial: jax.Array  # [S] initial-state distribution μ₀
    terminal: jax.Array  # [S] bool, entering this state ends the episode
    action_mask: jax.Array  # [S, A] bool, the actions available in each state
    reward_std: jax.Array  # [S, A] std of the Gaussian noise on sampled rewards

    @property
    def num_states(self) -> int:
        return self.transitions.shape[-3]

    @property
    def num_actions(self) -> int:
        return self.transitions.shape[-2]

    @classmethod
    def create(
        cls,
        transitions,
        rewards,
        discount: float,
        initial=None,
        terminal=None,
        action_mask=None,
        reward_std=None,
        atol: float = 1e-5,
    ) -> FiniteMDP:
        """Builds and validates a finite MDP from array-likes.

        Args:
          transitions: ``[S, A, S]`` probabilities P(s' | s, a); each row sums to 1.
          rewards: ``[S, A]`` expected reward r(s, a) or ``[S, A, S]`` reward of s, a → s'.
          discount: γ in [0, 1].
          initial: ``[S]`` initial-state distribution (default: state 0).
          terminal: ``[S]`` bool, terminal states (default: none).
          action_mask: ``[S, A]`` bool, available actions (default: all).
          reward_std: ``[S, A]`` standard deviation of Gaussian reward noise (default 0).
          atol: tolerance on the row sums of ``transitions`` and ``initial``.

        Returns:
          A validated ``FiniteMDP`` with float32 arrays.

        Raises:
          ValueError: naming the argument, the offending entry and what is allowed.
        """
        p = np.asarray(transitions, dtype=np.float64)
        if p.ndim != 3 or p.shape[0] != p.shape[2]:
            raise ValueError(f"`transitions` must have shape [S, A, S], got shape {p.shape}")
        s, a, _ = p.shape
        r = np.asarray(rewards, dtype=np.float64)
        if r.shape == (s, a):
            r = np.broadcast_to(r[:, :, None], (s, a, s))
        elif r.shape != (s, a, s):
            raise ValueError(
                f"`rewards` has shape {r.shape} but must be [S, A] = {(s, a)} or "
                f"[S, A, S] = {(s, a, s)} to match `transitions` {p.shape}"
            )
        mu = np.zeros(s) if initial is None else np.asarray(initial, dtype=np.float64)
        if initial is None:
            mu[0] = 1.0
        term = np.zeros(s, bool) if terminal is None else np.asarray(terminal)
        mask = np.ones((s, a), bool) if action_mask is None else np.asarray(action_mask)
        std = np.zeros((s, a)) if reward_std is None else np.asarray(reward_std, np.float64)
        _validate_arrays(p, r, mu, term, mask, std, discount, atol)
        return cls(
            transitions=jnp.asarray(p, jnp.float32),
            rewards=jnp.asarray(r, jnp.float32),
            discount=jnp.asarray(discount, jnp.float32),
            initial=jnp.asarray(mu, jnp.float32),
            terminal=jnp.asarray(term, bool),
            action_mask=jnp.asarray(mask, bool),
            reward_std=jnp.asarray(std, jnp.float32),
        )


def _first(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(bad)[0])


def validate_mdp(mdp: FiniteMDP, atol: float = 1e-5) -> None:
    """Raises ``ValueError`` if ``mdp`` is not a well-formed finite MDP.

    Checks shapes, finiteness, that probabilities are non-negative and sum to 1
    (``transitions`` rows and ``initial``), that γ ∈ [0, 1], that every
    non-terminal state has an available action and that ``reward_std ≥ 0``. Runs
    on concrete arrays, so call it outside ``jax.jit``.
    """
    raw = (
        mdp.transitions,
        mdp.rewards,
        mdp.initial,
        mdp.terminal,
        mdp.action_mask,
        mdp.reward_std,
        mdp.discount,
    )
    _validate_arrays(*(np.asarray(x) for x in raw), atol=atol)


def _validate_arrays(p, r, mu, term, mask, std, discount, atol) -> None:
    if p.ndim != 3 or p.shape[0] != p.shape[2]:
        raise ValueError(f"`transitions` must have shape [S, A, S], got shape {p.shape}")
    s, a, _ = p.shape
    expected = {
        "rewards": (np.shape(r), (s, a, s)),
        "initial": (np.shape(mu), (s,)),
        "terminal": (np.shape(term), (s,)),
        "action_mask": (np.shape(mask), (s, a)),
        "reward_std": (np.shape(std), (s, a)),
    }
    for name, (got, want) in expected.items():
        if got != want:
            raise ValueError(
                f"`{name}` has shape {got} but must have shape {want} to match "
                f"`transitions` of shape {p.shape} (S={s}, A={a})"
            )
    if np.ndim(discount) != 0 or not 0.0 <= float(discount) <= 1.0:
        raise ValueError(f"`discount` must be a scalar in [0, 1], got {discount!r}")
    for name, x in (("transitions", p), ("rewards", r), ("initial", mu), ("reward_std", std)):
        if not np.all(np.isfinite(x)):
            idx = _first(~np.isfinite(x))
            raise ValueError(f"`{name}` must be finite, but {name}{list(idx)} = {x[idx]}")
    if np.any(p < 0):
        s_, a_, n_ = _first(p < 0)
        raise ValueError(
            f"`transitions` must be non-negative probabilities, but "
            f"P[s={s_}, a={a_}, s'={n_}] = {p[s_, a_, n_]:.6g}"
        )
    sums = p.sum(-1)
    if np.any(np.abs(sums - 1.0) > atol):
        s_, a_ = _first(np.abs(sums - 1.0) > atol)
        raise ValueError(
            f"`transitions` rows must sum to 1 over s' (tolerance {atol}), but "
            f"P[s={s_}, a={a_}, :] sums to {sums[s_, a_]:.6g}"
        )
    if np.any(mu < 0) or abs(mu.sum() - 1.0) > atol:
        raise ValueError(
            f"`initial` must be a probability vector (non-negative, summing to 1), "
            f"got min {mu.min():.6g} and sum {mu.sum():.6g}"
        )
    if np.any(np.asarray(term, bool) & (mu > 0)) and np.all(np.asarray(term, bool)[mu > 0]):
        raise ValueError("`initial` puts all its mass on terminal states; episodes would be empty")
    if np.any(std < 0):
        idx = _first(std < 0)
        raise ValueError(f"`reward_std` must be >= 0, but reward_std{list(idx)} = {std[idx]}")
    no_action = ~np.asarray(mask, bool).any(-1) & ~np.asarray(term, bool)
    if np.any(no_action):
        raise ValueError(
            f"`action_mask` leaves non-terminal state {int(np.argmax(no_action))} with no "
            f"available action; every non-terminal state needs at least one"
        )


def expected_rewards(mdp: FiniteMDP) -> jax.Array:
    """Expected one-step reward r(s, a) = Σₛ' P(s' | s, a) R(s, a, s').

    Args:
      mdp: the MDP.

    Returns:
      ``[S, A]`` float32 expected rewards.
    """
    return jnp.einsum("san,san->sa", mdp.transitions, mdp.rewards)


def policy_matrix(policy, num_actions: int) -> jax.Array:
    """Returns a policy as an ``[S, A]`` matrix of probabilities π(a | s).

    Args:
      policy: ``[S]`` integer actions (a deterministic policy) or ``[S, A]`` probabilities.
      num_actions: A.

    Returns:
      ``[S, A]`` float32 probabilities.
    """
    policy = jnp.asarray(policy)
    if jnp.issubdtype(policy.dtype, jnp.integer):
        return jax.nn.one_hot(policy, num_actions, dtype=jnp.float32)
    if policy.ndim < 1 or policy.shape[-1] != num_actions:
        raise ValueError(
            f"`policy` must be [S] integer actions or [S, A={num_actions}] probabilities, "
            f"got shape {policy.shape} and dtype {policy.dtype}"
        )
    return policy.astype(jnp.float32)


@partial(jax.jit, static_argnames=("num_states", "num_actions", "branching", "terminal_states"))
def random_mdp(
    key: jax.Array,
    num_states: int,
    num_actions: int,
    discount: float = 0.9,
    branching: int | None = None,
    terminal_states: int = 0,
) -> FiniteMDP:
    """Draws a random finite MDP; pure, so it runs under ``jax.jit`` and ``jax.vmap``.

    Each row P(· | s, a) is uniform on a simplex face: ``branching`` successor
    states drawn without replacement, weights from a flat Dirichlet. Rewards
    R(s, a, s') ~ N(0, 1). The first state is the start state; the last
    ``terminal_states`` states are terminal (absorbing, zero reward).

    Args:
      key: PRNG key.
      num_states: S ≥ 1.
      num_actions: A ≥ 1.
      discount: γ.
      branching: number of possible successors of each (s, a), default S.
      terminal_states: how many states at the end of the index range are terminal.

    Returns:
      A ``FiniteMDP`` with ``[S, A, S]`` transitions and rewards.
    """
    branching = num_states if branching is None else branching
    if not 1 <= branching <= num_states:
        raise ValueError(f"`branching` must be in [1, num_states={num_states}], got {branching}")
    if not 0 <= terminal_states < num_states:
        raise ValueError(
            f"`terminal_states` must be in [0, num_states - 1 = {num_states - 1}], "
            f"got {terminal_states}"
        )
    k_support, k_weights, k_rewards = jax.random.split(key, 3)
    shape = (num_states, num_actions, num_states)
    # The `branching` smallest of S uniform scores pick a random support per row.
    scores = jax.random.uniform(k_support, shape)
    kth = jnp.sort(scores, axis=-1)[..., branching - 1 : branching]
    support = scores <= kth
    weights = jax.random.exponential(k_weights, shape) * support
    p = weights / weights.sum(-1, keepdims=True)
    r = jax.random.normal(k_rewards, shape)
    terminal = jnp.arange(num_states) >= num_states - terminal_states
    absorbing = jnp.broadcast_to(jnp.eye(num_states)[:, None, :], shape)
    p = jnp.where(terminal[:, None, None], absorbing, p)
    r = jnp.where(terminal[:, None, None], 0.0, r)
    return FiniteMDP(
        transitions=p.astype(jnp.float32),
        rewards=r.astype(jnp.float32),
        discount=jnp.asarray(discount, jnp.float32),
        initial=jax.nn.one_hot(0, num_states, dtype=jnp.float32),
        terminal=terminal,
        action_mask=jnp.ones((num_states, num_actions), bool),
        reward_std=jnp.zeros((num_states, num_actions), jnp.float32),
    )
