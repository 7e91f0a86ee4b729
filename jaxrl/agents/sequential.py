"""Runs batched by ``vmap`` executed one after another, on each device its own runs.

On a CPU an off-policy update batched over runs (seeds, configurations) costs more
than the same runs one after another: its small matrix products, batched, run
worse on XLA:CPU, and a ``lax.cond`` whose predicate is batched (TD3's delayed
actor update, the warm-up's "learn yet?") becomes a ``select`` that computes both
branches every step. :func:`sequential_under_vmap` gives a function whose
``vmap`` runs the unbatched program once per run instead (``lax.map``).

Several devices. ``jaxrl train`` gives the CPU one host device per core and
shards the run axis over them (:mod:`jaxrl.run.experiment`: whole runs per
device). A ``lax.map`` over a sharded axis makes every device take part in every
run (SAC, 4 seeds on 2 host devices: 28 against 151 env steps/s in total), so the
mapped runs go through ``jax.shard_map`` over the same devices: each device maps
over its own runs, and the devices work in parallel.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

__all__ = ["runs_mesh", "sequential_under_vmap"]


def runs_mesh(num_runs: int) -> Mesh | None:
    """The mesh over which :mod:`jaxrl.run.experiment` shards ``num_runs`` runs, or None.

    One process: the first ``min(num_runs, devices)`` devices (whole runs per device);
    several processes: every device. None when that is a single device or ``num_runs``
    does not divide evenly over the devices (the runs then stay where they are).
    """
    devices = jax.devices()
    if jax.process_count() == 1:
        devices = devices[: max(1, num_runs)]
    if len(devices) < 2 or num_runs % len(devices):
        return None
    return Mesh(np.array(devices), ("runs",))


def sequential_under_vmap(fn: Callable) -> Callable:
    """``fn`` whose ``vmap`` runs one call after another (``lax.map``) instead of batching.

    Each run is then the unbatched program of a single run, so ``jax.vmap(fn)(xs)[i]``
    equals ``fn(xs[i])``. With several devices the runs are split over them
    (:func:`runs_mesh`) and each device maps over its own. Measured on 2 CPU cores
    (jaxrl's speed suite at rejax's settings): SAC 2,746 env steps/s for one seed, 2,033
    in total for 8 batched seeds. TD3 at its defaults, 4,000 steps, 4 seeds on 2 host
    devices through ``run_seeds``: 164 CPU s batched, 127 CPU s mapped, against 37 CPU s
    for one seed alone (compiling included; load 9-25, so wall times say little).
    """

    def call(*args):
        # Only the arrays go through custom_vmap (a Config rebuilt with flags for leaves would
        # fail its own validation); Python numbers stay static, as in an unbatched call.
        leaves, tree = jax.tree.flatten(args)
        is_array = [isinstance(x, jax.Array | np.ndarray) for x in leaves]
        out_tree = []

        def rebuild(arrays):
            it = iter(arrays)
            return jax.tree.unflatten(
                tree, [next(it) if a else x for x, a in zip(leaves, is_array, strict=True)]
            )

        @jax.custom_batching.custom_vmap
        def flat(*arrays):
            out, treedef = jax.tree.flatten(fn(*rebuild(arrays)))
            out_tree[:] = [treedef]
            return out

        @flat.def_vmap
        def _rule(axis_size, in_batched, *arrays):
            arrays = [
                x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))
                for x, b in zip(arrays, in_batched, strict=True)
            ]

            def one_by_one(arrays):
                return jax.lax.map(lambda xs: flat(*xs), arrays)

            mesh = runs_mesh(axis_size)
            if mesh is not None:
                # check_vma=False: the mapped function's conds and scans mix per-device values
                # with constants, which the varying-axes check refuses although no value is
                # shared between devices (nothing in fn communicates).
                one_by_one = jax.shard_map(
                    one_by_one,
                    mesh=mesh,
                    in_specs=PartitionSpec("runs"),
                    out_specs=PartitionSpec("runs"),
                    check_vma=False,
                )
            out = one_by_one(arrays)
            return out, [True] * len(out)

        out = flat(*[x for x, a in zip(leaves, is_array, strict=True) if a])
        return jax.tree.unflatten(out_tree[0], out)  # out_tree is known once flat was traced

    return call
