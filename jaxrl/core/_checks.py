"""Trace-time argument checks shared by the core functions.

Shapes are static under ``jax.jit``, so these checks run once while tracing and
cost nothing at run time. Each error names the argument and the shapes involved,
because "shapes (3,) and (4,) do not match" alone does not tell a user which of
five arrays is wrong.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np


def as_float(x, name: str) -> jnp.ndarray:
    """Returns ``x`` as a floating array: float32 unless it is already a float type.

    Booleans and integers (``terminated``, ``done`` flags, actions used as
    weights) become float32; bf16 and float64 stay as they are.
    """
    del name
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x
    return x.astype(jnp.float32)


def check_rank(x, rank: int | tuple[int, ...], name: str) -> None:
    """Raises ``ValueError`` unless ``x.ndim`` is ``rank`` (or one of the ranks given)."""
    ranks = (rank,) if isinstance(rank, int) else tuple(rank)
    ndim = np.ndim(x)
    if ndim not in ranks:
        allowed = " or ".join(str(r) for r in ranks)
        raise ValueError(
            f"`{name}` must have rank {allowed}, got rank {ndim} (shape {np.shape(x)})"
        )


def check_min_rank(x, rank: int, name: str) -> None:
    """Raises ``ValueError`` unless ``x.ndim >= rank``."""
    if np.ndim(x) < rank:
        raise ValueError(
            f"`{name}` must have rank >= {rank}, got rank {np.ndim(x)} (shape {np.shape(x)})"
        )


def check_same_shape(arrays: Mapping[str, object]) -> None:
    """Raises ``ValueError`` naming the first pair of arguments whose shapes differ."""
    items = list(arrays.items())
    first_name, first = items[0]
    for name, x in items[1:]:
        if np.shape(x) != np.shape(first):
            raise ValueError(
                f"`{name}` has shape {np.shape(x)} but `{first_name}` has shape "
                f"{np.shape(first)}; they must be equal"
            )


def check_broadcastable(x, shape: tuple[int, ...], name: str, target: str) -> None:
    """Raises ``ValueError`` unless ``x`` broadcasts to ``shape`` (the shape of ``target``)."""
    try:
        out = np.broadcast_shapes(np.shape(x), shape)
    except ValueError:
        out = None
    if out != tuple(shape):
        raise ValueError(
            f"`{name}` with shape {np.shape(x)} does not broadcast to the shape {tuple(shape)} "
            f"of `{target}`"
        )


def check_leading(x, leading: tuple[int, ...], name: str, target: str) -> None:
    """Raises ``ValueError`` unless ``x.shape`` starts with ``leading`` (``target``'s shape)."""
    shape = np.shape(x)
    if shape[: len(leading)] != tuple(leading):
        raise ValueError(
            f"`{name}` has shape {shape}, whose leading axes must equal the shape "
            f"{tuple(leading)} of `{target}`"
        )


def check_hyperparameter(value, name: str, upper: float | None = None) -> None:
    """Checks a Python/NumPy hyperparameter; traced values (sweeps under vmap) pass through."""
    if isinstance(value, (int, float, np.number, np.ndarray)):
        arr = np.asarray(value)
        if not np.all(arr >= 0) or (upper is not None and not np.all(arr <= upper)):
            allowed = ">= 0" if upper is None else f"in [0, {upper}]"
            raise ValueError(f"`{name}` must be {allowed}, got {value}")


def check_real(value, name: str, *, low=None, high=None, low_open=False, high_open=False):
    """Raises ValueError when a concrete Python/NumPy number lies outside its range.

    Arrays and tracers pass unchecked: they may be swept hyperparameters under vmap.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return
    v = float(value)
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high or v != v:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must lie in {interval}, got {value!r}")


def check_count(value, name: str, minimum: int) -> None:
    """Raises ValueError unless ``value`` is a Python int ≥ minimum (it fixes a loop bound)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}")
