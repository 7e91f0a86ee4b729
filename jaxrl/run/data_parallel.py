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
(PQN, PPO, A2C and REINFORCE do; TRPO does not: its conjugate-gradient step needs
the whole batch). Usage::

    from jaxrl.agents import ppo
    from jaxrl.run import data_parallel

    train = data_parallel.make_train(ppo, ppo.Config(num_envs=16))   # all jax.devices()
    state, metrics = jax.jit(train)(jax.random.PRNGKey(0))

The state has the one-device run's shapes: a leaf that holds one row per
environment (environment states, observations) is sharded over the devices along
its first axis, every other leaf (parameters, optimiser state, key) is replicated;
so a checkpoint of a split run restores on one device and the other way round.
``metrics`` are reduced over the devices inside the program.

``jaxrl train ALGO --seeds 1 --devices N`` (N ≥ 2) splits its one run this way, and
so does a single run on several accelerators (:func:`agent_for_runs`). The host
devices jaxrl makes by default on a CPU (one per core) are left to whole runs: on a
loaded 2-core machine one PPO CartPole run took longer on 2 host devices than on one
(every minibatch waits for both devices at its gradient average).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxrl.agents.base import Agent
from jaxrl.run.devices import requested_host_devices

__all__ = [
    "AXIS",
    "agent_for_runs",
    "make_agent",
    "make_mesh",
    "make_train",
    "supports_data_parallel",
]

AXIS = "data"


def supports_data_parallel(algo_module) -> bool:
    """Whether ``algo_module.make_agent`` takes ``axis_name`` and ``num_shards``."""
    params = inspect.signature(algo_module.make_agent).parameters
    return "axis_name" in params and "num_shards" in params


def make_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), (AXIS,))


def _split(algo_module, config, mesh: Mesh, agent_kwargs) -> tuple[Agent, Any]:
    """One device's agent and the PartitionSpecs of the run's state."""
    if not supports_data_parallel(algo_module):
        name = algo_module.__name__.rsplit(".", 1)[-1]
        raise ValueError(
            f"{name} cannot split one run across devices (its make_agent takes no num_shards); "
            "run several seeds instead, one per device"
        )
    agent = algo_module.make_agent(
        config, axis_name=AXIS, num_shards=mesh.devices.size, **agent_kwargs
    )
    whole = algo_module.make_agent(config, **agent_kwargs)
    key = jax.ShapeDtypeStruct((2,), np.uint32)
    one = jax.eval_shape(whole.init, key, config)
    stacked = jax.shard_map(
        lambda k, c: _stacked(agent.init(k, c)),
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec()),
        out_specs=PartitionSpec(AXIS),
        check_vma=False,
    )
    local = jax.tree.map(lambda x: x.shape[1:], jax.eval_shape(stacked, key, config))

    def spec(one_leaf, local_shape):
        # A leaf with a row per environment is smaller on one device than in the whole run.
        return PartitionSpec() if one_leaf.shape == local_shape else PartitionSpec(AXIS)

    return agent, jax.tree.map(spec, one, local)


def _stacked(tree):
    return jax.tree.map(lambda x: x[None], tree)


def make_agent(algo_module, config, mesh: Mesh | None = None, **agent_kwargs) -> Agent:
    """The algorithm's :class:`~jaxrl.agents.base.Agent` with one run split over ``mesh``.

    ``init(key, cfg)`` and ``update(state, cfg)`` take and return the state of the
    one-device run, its per-environment leaves sharded over the mesh; the key and
    the Config are replicated, and so are ``update``'s metrics. ``agent_kwargs`` go
    to the algorithm's ``make_agent`` (e.g. ``advantage_fn``).
    """
    mesh = make_mesh() if mesh is None else mesh
    agent, specs = _split(algo_module, config, mesh, agent_kwargs)
    rep = PartitionSpec()
    # check_vma=False: env states start equal on every device (zeros) and then vary, which
    # the varying-axis checker rejects in a scan carry; replicated outputs are pmean-ed.
    init = jax.shard_map(agent.init, mesh=mesh, in_specs=(rep, rep), out_specs=specs,
                         check_vma=False)  # fmt: skip
    update = jax.shard_map(agent.update, mesh=mesh, in_specs=(specs, rep),
                           out_specs=(specs, rep), check_vma=False)  # fmt: skip
    return Agent(
        init=init,
        update=update,
        num_updates=agent.num_updates,
        steps_per_update=agent.steps_per_update,
    )


def make_train(algo_module, config, mesh: Mesh | None = None, **agent_kwargs):
    """``train(key) -> (state, metrics)``: the whole run, split over ``mesh``.

    The updates run under one ``lax.scan`` inside ``shard_map`` (no collective
    outside the gradient and statistic reductions).
    """
    mesh = make_mesh() if mesh is None else mesh
    agent, specs = _split(algo_module, config, mesh, agent_kwargs)

    def local_train(key):
        state = agent.init(key, config)
        return jax.lax.scan(
            lambda s, _: agent.update(s, config), state, None, length=agent.num_updates
        )

    rep = PartitionSpec()
    return jax.shard_map(local_train, mesh=mesh, in_specs=rep, out_specs=(specs, rep),
                         check_vma=False)  # fmt: skip


def agent_for_runs(algo_module, config, num_runs: int, log=print, **agent_kwargs) -> Agent:
    """The agent a runner of ``num_runs`` runs uses.

    One run on several accelerators, or on host devices asked for by name
    (``--devices N``, :func:`jaxrl.run.devices.requested_host_devices`), is split over
    all of them when the algorithm and ``config`` allow it; otherwise (and for several
    runs, which are placed on the devices whole) the algorithm's own ``make_agent``.
    """
    devices = jax.devices()
    asked = devices[0].platform != "cpu" or (requested_host_devices() or 1) > 1
    if num_runs == 1 and len(devices) > 1 and asked and supports_data_parallel(algo_module):
        try:
            agent = make_agent(algo_module, config, **agent_kwargs)
        except ValueError as e:
            log(f"note: the run stays on one device: {e}")
        else:
            log(f"one run split over {len(devices)} devices (environments and minibatches)")
            return agent
    return algo_module.make_agent(config, **agent_kwargs)
