"""Text and matplotlib renderings of tabular values, policies and paths.

States are laid out on the task's ``GridLayout`` (row-major); a problem without
one is drawn as a single row. Tiles ``H`` (hole), ``G`` (goal), ``C`` (cliff)
and ``T`` (terminal) are printed as letters instead of numbers.
"""

from __future__ import annotations

import os

import numpy as np

from jaxrl.tabular.gridworlds import GridLayout
from jaxrl.tabular.mdp import FiniteMDP

__all__ = ["value_grid", "policy_grid", "greedy_path", "draw_grid", "save_heatmap"]

_LETTER_TILES = "HGCT"


def _layout(layout: GridLayout | None, num_states: int) -> GridLayout:
    if layout is not None:
        rows, cols = layout.shape
        if rows * cols != num_states:
            raise ValueError(
                f"`layout` has {rows}×{cols} = {rows * cols} cells but there are "
                f"{num_states} states"
            )
        return layout
    return GridLayout(("." * num_states,), ())


def value_grid(values, layout: GridLayout | None = None, precision: int = 2) -> str:
    """V as a grid of numbers, one line per grid row.

    Args:
      values: ``[S]`` state values.
      layout: the task's layout, or None for one row.
      precision: digits after the decimal point.

    Returns:
      A multi-line string.
    """
    values = np.asarray(values, float)
    layout = _layout(layout, values.size)
    rows, cols = layout.shape
    cells = [
        [
            layout.tiles[r][c]
            if layout.tiles[r][c] in _LETTER_TILES
            else f"{values[r * cols + c]:.{precision}f}"
            for c in range(cols)
        ]
        for r in range(rows)
    ]
    width = max(len(x) for row in cells for x in row)
    return "\n".join(" ".join(x.rjust(width) for x in row) for row in cells)


def policy_grid(policy, layout: GridLayout | None = None) -> str:
    """A deterministic policy as arrows (the layout's action labels), one line per row.

    Args:
      policy: ``[S]`` integer actions.
      layout: the task's layout, or None for one row of action indices.

    Returns:
      A multi-line string.
    """
    policy = np.asarray(policy)
    layout = _layout(layout, policy.size)
    rows, cols = layout.shape
    label = lambda a: layout.action_labels[a] if a < len(layout.action_labels) else str(a)
    lines = []
    for r in range(rows):
        row = []
        for c in range(cols):
            tile = layout.tiles[r][c]
            row.append(tile if tile in _LETTER_TILES else label(int(policy[r * cols + c])))
        lines.append(" ".join(x.rjust(max(len(x), 1)) for x in row))
    return "\n".join(lines)


def greedy_path(mdp: FiniteMDP, policy, max_len: int | None = None) -> list[int]:
    """The most likely path of a deterministic policy from the most likely start state.

    Follows s ← argmax_{s'} P(s' | s, π(s)) until a terminal state, a repeated
    state (the policy loops) or ``max_len`` steps. In a deterministic MDP this is
    the path the policy takes.

    Args:
      mdp: the MDP.
      policy: ``[S]`` integer actions.
      max_len: step limit (default S).

    Returns:
      The visited states, start first.
    """
    p = np.asarray(mdp.transitions)
    terminal = np.asarray(mdp.terminal)
    policy = np.asarray(policy)
    s = int(np.argmax(np.asarray(mdp.initial)))
    path, seen = [s], {s}
    for _ in range(p.shape[0] if max_len is None else max_len):
        if terminal[s]:
            break
        s = int(np.argmax(p[s, policy[s]]))
        path.append(s)
        if s in seen:
            break
        seen.add(s)
    return path


def draw_grid(
    ax,
    values,
    layout: GridLayout | None = None,
    policy=None,
    paths: dict | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    annotate: bool = True,
):
    """Draws V as a heatmap on a matplotlib axis, with arrows and paths on top.

    Args:
      ax: a matplotlib ``Axes``.
      values: ``[S]`` state values.
      layout: the task's layout, or None for one row.
      policy: ``[S]`` integer actions to draw as arrow labels, or None.
      paths: ``{label: [states]}`` polylines to draw (e.g. from ``greedy_path``).
      title: axis title.
      cmap: matplotlib colour map.
      annotate: print the value (and arrow) in each cell.

    Returns:
      The image artist (for a colour bar).
    """
    values = np.asarray(values, float)
    layout = _layout(layout, values.size)
    rows, cols = layout.shape
    grid = values.reshape(rows, cols)
    letters = np.array([[t in _LETTER_TILES for t in row] for row in layout.tiles])
    shown = np.ma.masked_array(grid, letters)
    image = ax.imshow(shown, cmap=cmap)
    live = grid[~letters]
    low, high = (live.min(), live.max()) if live.size else (0.0, 1.0)
    for r in range(rows):
        for c in range(cols):
            tile = layout.tiles[r][c]
            if tile in _LETTER_TILES:
                colour = {"C": "#555555", "H": "#3b6ea5", "G": "#2e8b57", "T": "#999999"}[tile]
                ax.add_patch(_rect(c, r, colour))
                ax.text(c, r, tile, ha="center", va="center", color="white", fontsize=9)
                continue
            if annotate:
                text = f"{grid[r, c]:.2g}"
                if policy is not None:
                    a = int(np.asarray(policy)[r * cols + c])
                    labels = layout.action_labels
                    text = (labels[a] if a < len(labels) else str(a)) + "\n" + text
                # Dark text on the bright end of the colour map, light text elsewhere.
                bright = (grid[r, c] - low) > 0.6 * (high - low) if high > low else False
                colour = "black" if bright else "white"
                ax.text(c, r, text, ha="center", va="center", color=colour, fontsize=7)
    for i, (label, states) in enumerate((paths or {}).items()):
        ys, xs = np.divmod(np.asarray(states), cols)
        offset = 0.12 * (i - (len(paths) - 1) / 2)
        ax.plot(xs + offset, ys + offset, "-o", lw=2.5, ms=3, label=label)
    if paths:
        ncol = len(paths) if sum(len(k) for k in paths) < 60 else 1
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=ncol, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return image


def _fit_title(fig, ax) -> None:
    """Wraps (then shrinks) the axis title until it lies inside the figure.

    A small grid makes a narrow figure, and a title such as
    "FrozenLake-4x4: V* (value-iteration, γ=0.99)" is wider than it.
    """
    import textwrap

    title = ax.title
    words = " ".join(title.get_text().split())
    if not words:
        return
    renderer = fig.canvas.get_renderer()

    def inside() -> bool:
        box, frame = title.get_window_extent(renderer), fig.bbox
        return box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1

    width = len(words)
    while not inside() and width > 12:
        width = max(12, int(width * 0.8))
        title.set_text(textwrap.fill(words, width))
        fig.tight_layout()
    while not inside() and title.get_fontsize() > 6:
        title.set_fontsize(title.get_fontsize() - 1)
        fig.tight_layout()


def _rect(c, r, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((c - 0.5, r - 0.5), 1, 1, color=colour)


def save_heatmap(
    values,
    layout: GridLayout | None,
    path: str | os.PathLike,
    policy=None,
    title: str | None = None,
    paths: dict | None = None,
) -> str:
    """Saves V (and optionally the greedy policy and paths) as a heatmap PNG.

    Args:
      values: ``[S]`` state values.
      layout: the task's layout, or None for one row.
      path: output file; its directory is created.
      policy: ``[S]`` integer actions or None.
      title: figure title.
      paths: ``{label: [states]}`` or None.

    Returns:
      The path written, as a string.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layout = _layout(layout, np.asarray(values).size)
    rows, cols = layout.shape
    fig, ax = plt.subplots(figsize=(max(3.0, 0.75 * cols + 1.5), max(2.0, 0.75 * rows + 0.8)))
    image = draw_grid(ax, values, layout, policy=policy, paths=paths, title=title)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    _fit_title(fig, ax)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
