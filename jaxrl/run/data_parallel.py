"""One run split across devices: environments and minibatches per device, gradients averaged.

A sweep of N runs on D devices puts whole runs on devices (:mod:`jaxrl.run.experiment`).
With fewer runs than devices, or to make one run faster, the run itself is split:
every device steps ``num_envs / D`` of the environments and holds its share of
every minibatch; the gradient of each minibatch (and the episode statistics) is
averaged over the devices with ``pmean`` inside ``jax.shard_map``, so every
device applies the same update to the same parameters. For the same global batch
this is the one-device run, up to float32 rounding (the mean over the batch is
summed in another order).

The algorithm's ``make_agent`` must accept ``axis_name`` and ``num_shards``
(:mod:`jaxrl.agents.pqn` does). Usage::

    from jaxrl.agents import pqn
    from jaxrl.run import data_parallel

    train = data_parallel.make_train(pqn, pqn.Config(num_envs=32))   # all jax.devices()
    state, metrics = jax.jit(train)(jax.random.PRNGKey(0))

The state's leaves carry a leading device axis ``[D, ...]`` (the parameters are
identical copies); ``metrics`` are the same on every device and returned once.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxrl.agents.base import Agent

__all__ = ["AXIS", "make_agent", "make_mesh", "make_train", "supports_data_parallel"]

AXIS = "data"


def supports_data_parallel(algo_module) -> bool:
    """Whether ``algo_module.make_agent`` takes ``axis_name`` and ``num_shards``."""
    params = inspect.signature(algo_module.make_agent).parameters
    return "axis_name" in params and "num_shards" in params


def make_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), (AXIS,))


def _split(algo_module, config, mesh: Mesh) -> Agent:
    if not supports_data_parallel(algo_module):
        name = algo_module.__name__.rsplit(".", 1)[-1]
        raise ValueError(
            f"{name} cannot split one run across devices (its make_agent takes no axis_name); "
            "run several seeds instead, one per device"
        )
    return algo_module.make_agent(config, axis_name=AXIS, num_shards=mesh.devices.size)


def _local(tree):
    return jax.tree.map(lambda x: x[0], tree)


def _stacked(tree):
    return jax.tree.map(lambda x: x[None], tree)


def make_agent(algo_module, config, mesh: Mesh | None = None) -> Agent:
    """The algorithm's :class:`~jaxrl.agents.base.Agent` with one run split over ``mesh``.

    ``init(key, cfg)`` and ``update(state, cfg)`` take and return the state with a
    leading device axis ``[D, ...]`` sharded over the mesh; the key and the Config
    are replicated. ``update``'s metrics have no device axis.
    """
    mesh = make_mesh() if mesh is None else mesh
    agent = _split(algo_module, config, mesh)
    shard, rep = PartitionSpec(AXIS), PartitionSpec()

    def local_init(key, cfg):
        return _stacked(agent.init(key, cfg))

    def local_update(states, cfg):
        state, metrics = agent.update(_local(states), cfg)
        return _stacked(state), _stacked(metrics)

    # check_vma=False: env states start equal on every device (zeros) and then vary, which
    # the varying-axis checker rejects in a scan carry; every output here is per device.
    init = jax.shard_map(
        local_init, mesh=mesh, in_specs=(rep, rep), out_specs=shard, check_vma=False
    )
    sharded_update = jax.shard_map(
        local_update, mesh=mesh, in_specs=(shard, rep), out_specs=(shard, shard), check_vma=False
    )

    def update(states, cfg):
        states, metrics = sharded_update(states, cfg)
        return states, _local(metrics)  # pmean-ed: the same on every device

    return Agent(
        init=init,
        update=update,
        num_updates=agent.num_updates,
        steps_per_update=agent.steps_per_update,
    )


def make_train(algo_module, config, mesh: Mesh | None = None):
    """``train(key) -> (state [D, ...], metrics)``: the whole run, split over ``mesh``.

    The updates run under one ``lax.scan`` inside ``shard_map`` (no collective
    outside the gradient and metric averages).
    """
    mesh = make_mesh() if mesh is None else mesh
    agent = _split(algo_module, config, mesh)
    shard, rep = PartitionSpec(AXIS), PartitionSpec()

    def local_train(key):
        state = agent.init(key, config)
        state, metrics = jax.lax.scan(
            lambda s, _: agent.update(s, config), state, None, length=agent.num_updates
        )
        return _stacked(state), _stacked(metrics)

    sharded = jax.shard_map(
        local_train, mesh=mesh, in_specs=rep, out_specs=(shard, shard), check_vma=False
    )

    def train(key):
        state, metrics = sharded(key)
        return state, _local(metrics)

    return train
