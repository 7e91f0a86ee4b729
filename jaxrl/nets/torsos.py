"""Building blocks: activations, orthogonally initialised dense layers, MLP and CNN torsos.

Shapes: ``*N`` any leading batch axes, ``D`` an observation vector's size,
``H×W×C`` an image observation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.nets.initializers import orthogonal

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "HIDDEN_GAIN",
    "CheckedModule",
    "MLP",
    "POLICY_GAIN",
    "VALUE_GAIN",
    "check_activation",
    "check_torso",
    "dense",
    "make_torso",
]

HIDDEN_GAIN = math.sqrt(2.0)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0

#: Activation names accepted by every module here.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}
TORSOS = ("mlp", "cnn")


def check_activation(activation: str) -> None:
    """Raises ValueError unless ``activation`` names an entry of ``ACTIVATIONS``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")


def check_torso(torso: str) -> None:
    """Raises ValueError unless ``torso`` is "mlp" or "cnn"."""
    if torso not in TORSOS:
        raise ValueError(f"torso must be one of {list(TORSOS)}, got {torso!r}")


class CheckedModule(nn.Module):
    """A module whose ``activation`` (and ``torso``, where it has that field) are checked
    when it is built, so a bad name is one ValueError naming the field, not a KeyError
    at the first call."""

    def __post_init__(self):
        check_activation(self.activation)
        if "torso" in {f.name for f in dataclasses.fields(self)}:
            check_torso(self.torso)
        super().__post_init__()


def dense(features: int, gain: float, name: str | None = None) -> nn.Dense:
    """A dense layer with orthogonal(gain) weights and zero biases.

    The orthogonal initialiser is :func:`jaxrl.nets.initializers.orthogonal`: jax's, but
    safe under ``vmap`` on a CPU (no batched LAPACK QR)."""
    return nn.Dense(
        features,
        kernel_init=orthogonal(gain),
        bias_init=nn.initializers.zeros,
        name=name,
    )


class MLP(CheckedModule):
    """Hidden layers h ← act(W·h + b), W orthogonal with gain √2.

    ``__call__(x [*N, D]) -> [*N, hidden_sizes[-1]]`` (x itself, as float32, when
    ``hidden_sizes`` is empty).
    """

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        x = jnp.asarray(x, jnp.float32)
        for size in self.hidden_sizes:
            x = act(dense(size, HIDDEN_GAIN)(x))
        return x


class CNN(CheckedModule):
    """Small convolutional torso for MinAtar-sized images (10×10×C).

    Convolutions (``channels``, ``kernel_size``×``kernel_size``, stride 1, no
    padding) then dense layers (``hidden_sizes``), as in the MinAtar baselines
    (one 16-channel 3×3 convolution, then 128 units). See Young & Tian 2019,
    MinAtar: https://arxiv.org/abs/1903.03176

    ``__call__(x [*N, H, W, C]) -> [*N, hidden_sizes[-1]]``.
    """

    channels: Sequence[int] = (16,)
    kernel_size: int = 3
    hidden_sizes: Sequence[int] = (128,)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim < 3:
            raise ValueError(f"CNN: observation must be [*N, H, W, C], got shape {x.shape}")
        act = ACTIVATIONS[self.activation]
        batch = x.shape[:-3]
        x = jnp.asarray(x, jnp.float32).reshape((-1, *x.shape[-3:]))
        for c in self.channels:
            x = nn.Conv(
                c,
                (self.kernel_size, self.kernel_size),
                padding="VALID",
                kernel_init=orthogonal(HIDDEN_GAIN),
                bias_init=nn.initializers.zeros,
            )(x)
            x = act(x)
        x = x.reshape((x.shape[0], -1))
        x = MLP(self.hidden_sizes, self.activation)(x)
        return x.reshape((*batch, x.shape[-1]))


def make_torso(torso: str, hidden_sizes: Sequence[int], activation: str, name=None) -> nn.Module:
    """``MLP(hidden_sizes)`` or ``CNN(hidden_sizes=hidden_sizes)`` (the dense part)."""
    check_torso(torso)
    if torso == "cnn":
        return CNN(hidden_sizes=tuple(hidden_sizes), activation=activation, name=name)
    return MLP(tuple(hidden_sizes), activation, name=name)
