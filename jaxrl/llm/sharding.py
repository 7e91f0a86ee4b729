"""Parameters and batches of a language model over a device mesh (FSDP × data parallel).

The mesh has two axes: ``"data"`` splits the batch rows, ``"model"`` splits each
parameter along its largest dimension that the axis size divides (fully sharded data
parallel: every device holds ``1 / model`` of each weight; XLA gathers a weight where a
matmul needs it). Parameters are plain arrays with a ``NamedSharding``, so the same
pure functions (``forward``, ``generate``, a training step) run unchanged under
``jax.jit`` and give the one-device numbers up to float32 rounding.

Use: ``mesh = make_mesh(data=2, model=2)``;
``load_pretrained(path, sharding=fsdp_sharding(mesh))`` places each tensor as it is
read; ``shard_params(params, mesh)`` moves an existing pytree; ``shard_batch`` splits
``[B, ...]`` arrays over ``"data"``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["make_mesh", "fsdp_sharding", "shard_params", "shard_batch"]


def make_mesh(data: int = 1, model: int | None = None, devices=None) -> Mesh:
    """A ``(data, model)`` mesh over ``devices`` (default: all); ``model`` defaults to the rest.

    Raises:
        ValueError: ``data × model`` differs from the number of devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    model = len(devices) // data if model is None else model
    if data < 1 or model < 1 or data * model != len(devices):
        raise ValueError(
            f"mesh data ({data}) x model ({model}) must equal the number of devices "
            f"({len(devices)})"
        )
    return Mesh(np.array(devices).reshape(data, model), ("data", "model"))


def _spec(shape: tuple[int, ...], size: int) -> PartitionSpec:
    """Shard the largest dimension divisible by ``size`` over ``"model"``; else replicate."""
    if size > 1:
        for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
            if shape[dim] % size == 0:
                return PartitionSpec(*[("model" if d == dim else None) for d in range(len(shape))])
    return PartitionSpec()


def fsdp_sharding(mesh: Mesh) -> Callable:
    """``sharding(path, shape) -> NamedSharding`` for each parameter (FSDP over ``"model"``)."""
    size = mesh.shape["model"]

    def sharding(path, shape):
        del path  # one rule for every tensor: its largest divisible axis
        return NamedSharding(mesh, _spec(tuple(shape), size))

    return sharding


def shard_params(params, mesh: Mesh):
    """Places every leaf of ``params`` on ``mesh`` with the FSDP rule."""
    rule = fsdp_sharding(mesh)
    return jax.tree_util.tree_map(lambda x: jax.device_put(x, rule(None, np.shape(x))), params)


def shard_batch(batch, mesh: Mesh):
    """Splits the leading (row) axis of every array in ``batch`` over ``"data"``."""
    rows = NamedSharding(mesh, PartitionSpec("data"))
    return jax.tree_util.tree_map(lambda x: jax.device_put(x, rows), batch)
