"""Classic tabular problems as ``FiniteMDP`` arrays, with a grid layout for rendering.

Grid states are numbered row-major: state = row · cols + col, row 0 at the top.

References: Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.),
examples 6.5 (windy gridworld), 6.6 (cliff walking) and 6.7 (maximization bias):
http://incompleteideas.net/book/the-book-2nd.html; FrozenLake as in Gymnasium
and gymnax's ``FrozenLake-misc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxrl.tabular.mdp import FiniteMDP

__all__ = [
    "GridLayout",
    "FROZEN_LAKE_MAPS",
    "cliff_walking_mdp",
    "frozen_lake_mdp",
    "windy_gridworld_mdp",
    "maximization_bias_mdp",
]


class GridLayout(NamedTuple):
    """How to draw a tabular problem: one character per state, one label per action.

    Tiles: ``S`` start, ``G`` goal, ``H`` hole, ``C`` cliff, ``T`` terminal,
    ``F`` or ``.`` ordinary, a letter for a named state.
    """

    tiles: tuple[str, ...]  # [rows] strings of length cols
    action_labels: tuple[str, ...]  # [A] arrow or name of each action

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.tiles), len(self.tiles[0])


# Action order of Gymnasium's CliffWalking: up, right, down, left.
_URDL = ((-1, 0), (0, 1), (1, 0), (0, -1))
_URDL_LABELS = ("↑", "→", "↓", "←")
# Action order of Gymnasium's and gymnax's FrozenLake: left, down, right, up.
_LDRU = ((0, -1), (1, 0), (0, 1), (-1, 0))
_LDRU_LABELS = ("←", "↓", "→", "↑")

FROZEN_LAKE_MAPS = {
    "4x4": ("SFFF", "FHFH", "FFFH", "HFFG"),
    "8x8": (
        "SFFFFFFF",
        "FFFFFFFF",
        "FFFHFFFF",
        "FFFFFHFF",
        "FFFHFFFF",
        "FHHFFFHF",
        "FHFFHFHF",
        "FFFHFFFG",
    ),
}


def _absorb(p: np.ndarray, r: np.ndarray, terminal: np.ndarray) -> None:
    """Makes terminal states absorbing with zero reward (their rows are never used)."""
    for s in np.flatnonzero(terminal):
        p[s] = 0.0
        p[s, :, s] = 1.0
        r[s] = 0.0


def cliff_walking_mdp(discount: float = 1.0) -> tuple[FiniteMDP, GridLayout]:
    """Cliff Walking, 4 × 12 (Sutton & Barto example 6.6; Gymnasium ``CliffWalking-v0``).

    Start at the bottom-left, goal at the bottom-right, the cells between them are
    the cliff. Every step gives −1; stepping into the cliff gives −100 and sends
    the agent back to the start (the episode goes on). Only the goal is terminal.
    The optimal path runs along the cliff edge: 13 steps, return −13.

    Args:
      discount: γ (the book uses 1).

    Returns:
      ``(mdp, layout)`` with S = 48, A = 4 (up, right, down, left).
    """
    rows, cols = 4, 12
    tiles = ["." * cols] * 3 + ["S" + "C" * (cols - 2) + "G"]
    start, goal = (rows - 1) * cols, rows * cols - 1
    n = rows * cols
    p = np.zeros((n, 4, n))
    r = np.full((n, 4, n), -1.0)
    for s in range(n):
        row, col = divmod(s, cols)
        for a, (dr, dc) in enumerate(_URDL):
            nr, nc = min(max(row + dr, 0), rows - 1), min(max(col + dc, 0), cols - 1)
            nxt = nr * cols + nc
            if tiles[nr][nc] == "C":
                nxt = start
                r[s, a, nxt] = -100.0
            p[s, a, nxt] = 1.0
    terminal = np.arange(n) == goal
    _absorb(p, r, terminal)
    mdp = FiniteMDP.create(p, r, discount, initial=np.eye(n)[start], terminal=terminal)
    return mdp, GridLayout(tuple(tiles), _URDL_LABELS)


def frozen_lake_mdp(
    desc: str | Sequence[str] = "4x4",
    is_slippery: bool = True,
    success_rate: float = 1.0 / 3.0,
    reward_schedule: Sequence[float] = (1.0, 0.0, 0.0),
    discount: float = 0.99,
) -> tuple[FiniteMDP, GridLayout]:
    """FrozenLake with the dynamics of gymnax ``FrozenLake-misc`` (and Gymnasium's).

    The agent moves in the chosen direction with probability ``success_rate`` and
    to each of the two perpendicular directions with probability
    (1 − success_rate)/2 when slippery (1/3 each by default); moves off the grid
    leave it in place. The reward depends on the tile it lands on:
    ``reward_schedule = (goal, hole, frozen)``. Holes and the goal are terminal.

    Args:
      desc: ``"4x4"``, ``"8x8"`` or a map as rows of ``S``/``F``/``H``/``G``.
      is_slippery: whether moves slip.
      success_rate: probability of the intended move when slippery.
      reward_schedule: rewards for landing on the goal, a hole, another tile.
      discount: γ (Gymnasium does not fix one; 0.99 is customary).

    Returns:
      ``(mdp, layout)`` with S = rows · cols, A = 4 (left, down, right, up).
    """
    if isinstance(desc, str):
        if desc not in FROZEN_LAKE_MAPS:
            raise ValueError(
                f"`desc` must be one of {sorted(FROZEN_LAKE_MAPS)} or a list of rows, got {desc!r}"
            )
        desc = FROZEN_LAKE_MAPS[desc]
    tiles = tuple(desc)
    if (
        not tiles
        or any(len(t) != len(tiles[0]) for t in tiles)
        or set("".join(tiles)) - set("SFHG")
    ):
        raise ValueError(f"`desc` must be a rectangular map of S, F, H, G tiles, got {tiles!r}")
    if not 0.0 <= success_rate <= 1.0:
        raise ValueError(f"`success_rate` must be in [0, 1], got {success_rate}")
    if len(reward_schedule) != 3:
        raise ValueError(
            f"`reward_schedule` must be (goal, hole, frozen), got {tuple(reward_schedule)}"
        )
    rows, cols = len(tiles), len(tiles[0])
    n = rows * cols
    flat = "".join(tiles)
    tile_reward = {"G": reward_schedule[0], "H": reward_schedule[1]}
    if is_slippery:
        slips = ((0, success_rate), (-1, (1 - success_rate) / 2), (1, (1 - success_rate) / 2))
    else:
        slips = ((0, 1.0),)
    p = np.zeros((n, 4, n))
    r = np.zeros((n, 4, n))
    for s in range(n):
        row, col = divmod(s, cols)
        for a in range(4):
            for offset, prob in slips:
                dr, dc = _LDRU[(a + offset) % 4]
                nr, nc = min(max(row + dr, 0), rows - 1), min(max(col + dc, 0), cols - 1)
                nxt = nr * cols + nc
                p[s, a, nxt] += prob
                r[s, a, nxt] = tile_reward.get(flat[nxt], reward_schedule[2])
    terminal = np.array([t in "HG" for t in flat])
    _absorb(p, r, terminal)
    initial = np.array([t == "S" for t in flat], float)
    mdp = FiniteMDP.create(p, r, discount, initial=initial, terminal=terminal)
    return mdp, GridLayout(tiles, _LDRU_LABELS)


WINDY_COLUMNS = (0, 0, 0, 1, 1, 1, 2, 2, 1, 0)


def windy_gridworld_mdp(
    wind: Sequence[int] = WINDY_COLUMNS, discount: float = 1.0
) -> tuple[FiniteMDP, GridLayout]:
    """Windy gridworld, 7 × 10 (Sutton & Barto example 6.5).

    Start (3, 0), goal (3, 7); the wind of the agent's current column pushes it
    up by that many cells after its move; −1 per step. The shortest episode
    takes 15 steps (return −15).

    Args:
      wind: upward push of each of the 10 columns.
      discount: γ (the book uses 1).

    Returns:
      ``(mdp, layout)`` with S = 70, A = 4 (up, right, down, left).
    """
    rows, cols = 7, len(wind)
    start, goal = 3 * cols, 3 * cols + 7
    n = rows * cols
    p = np.zeros((n, 4, n))
    for s in range(n):
        row, col = divmod(s, cols)
        for a, (dr, dc) in enumerate(_URDL):
            nr = min(max(row + dr - wind[col], 0), rows - 1)
            nc = min(max(col + dc, 0), cols - 1)
            p[s, a, nr * cols + nc] = 1.0
    r = np.full((n, 4, n), -1.0)
    terminal = np.arange(n) == goal
    _absorb(p, r, terminal)
    tiles = [
        "".join("S" if i == start else "G" if i == goal else "." for i in range(k, k + cols))
        for k in range(0, n, cols)
    ]
    mdp = FiniteMDP.create(p, r, discount, initial=np.eye(n)[start], terminal=terminal)
    return mdp, GridLayout(tuple(tiles), _URDL_LABELS)


def maximization_bias_mdp(
    num_b_actions: int = 10, mean: float = -0.1, std: float = 1.0, discount: float = 1.0
) -> tuple[FiniteMDP, GridLayout]:
    """The maximization-bias MDP of Sutton & Barto example 6.7 (figure 6.5).

    States, left to right: terminal, B, A (start), terminal. From A, action 0
    (left) goes to B and action 1 (right) ends the episode, both with reward 0.
    From B each of ``num_b_actions`` actions ends the episode with a reward drawn
    from N(mean, std²). With mean < 0, right is optimal: Q*(A, left) = mean.
    Only actions 0 and 1 exist in A (``action_mask``).

    Args:
      num_b_actions: actions available in B.
      mean: mean reward of B's actions.
      std: standard deviation of B's rewards.
      discount: γ.

    Returns:
      ``(mdp, layout)`` with S = 4, A = max(2, num_b_actions).
    """
    if num_b_actions < 1:
        raise ValueError(f"`num_b_actions` must be >= 1, got {num_b_actions}")
    left_end, b, a_state, right_end = range(4)
    num_actions = max(2, num_b_actions)
    p = np.zeros((4, num_actions, 4))
    r = np.zeros((4, num_actions, 4))
    mask = np.zeros((4, num_actions), bool)
    mask[[left_end, right_end]] = True
    p[a_state, :, a_state] = 1.0  # actions that do not exist in A are no-ops
    p[a_state, 0] = np.eye(4)[b]
    p[a_state, 1] = np.eye(4)[right_end]
    mask[a_state, :2] = True
    p[b, :, b] = 1.0
    p[b, :num_b_actions] = np.eye(4)[left_end]
    r[b, :num_b_actions, left_end] = mean
    mask[b, :num_b_actions] = True
    reward_std = np.zeros((4, num_actions))
    reward_std[b, :num_b_actions] = std
    terminal = np.array([True, False, False, True])
    _absorb(p, r, terminal)
    mdp = FiniteMDP.create(
        p,
        r,
        discount,
        initial=np.eye(4)[a_state],
        terminal=terminal,
        action_mask=mask,
        reward_std=reward_std,
    )
    labels = ("←", "→") + tuple(str(i) for i in range(2, num_actions))
    return mdp, GridLayout(("TBAT",), labels)
