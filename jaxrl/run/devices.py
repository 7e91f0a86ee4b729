"""How many devices XLA gives a CPU: one per core by default.

XLA:CPU runs one device's program mostly on one core, so a run on a single host
device leaves the other cores idle. XLA can split the CPU into several host
devices with ``--xla_force_host_platform_device_count=N``; jaxrl then shards the
runs of a sweep across them (whole runs per device when there are at least as
many runs as devices; see :mod:`jaxrl.run.experiment`), or splits one run's
environments across them (:mod:`jaxrl.run.data_parallel`).

The flag must be in ``XLA_FLAGS`` before jax initialises its backends, so
:func:`use_host_devices` is called before jax is imported: by ``jaxrl train``
(``--devices N``; default one device per core) and by user scripts::

    from jaxrl.run.devices import use_host_devices
    use_host_devices()          # before `import jax`
    import jax

A user's own ``XLA_FLAGS`` is left alone unless ``devices`` is given. The flag
only concerns the CPU platform; on a GPU or TPU machine ``jax.devices()`` still
lists the accelerators.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = [
    "FLAG",
    "device_summary",
    "initialize_distributed",
    "requested_host_devices",
    "use_host_devices",
]

FLAG = "--xla_force_host_platform_device_count"
_FLAG_RE = re.compile(re.escape(FLAG) + r"=\S*")
_requested: int | None = None  # the device count given to use_host_devices, if any


def requested_host_devices() -> int | None:
    """The host-device count this process asked for by name (``--devices N``), else None.

    :func:`jaxrl.run.data_parallel.agent_for_runs` splits a single CPU run only then:
    on a loaded 2-core machine one PPO run on 2 host devices ran slower than on one.
    """
    return _requested


def _cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def _backend_started() -> bool:
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except Exception:  # a private name moved: assume the worst
        return True


def use_host_devices(devices: int | None = None, *, every_core: bool = True) -> str:
    """Sets ``XLA_FLAGS`` so the CPU shows ``devices`` host devices (default: one per core).

    Args:
      devices: how many host devices; None for one per core (``every_core``), unless the
        user already set ``XLA_FLAGS`` or jax has already started (then nothing changes).
      every_core: with ``devices=None``, whether to ask for one device per core at all
        (``jaxrl.cli.main`` passes False when called from Python with an argument list).

    Returns:
      A one-line note on what was done, for the run log.

    Raises:
      ValueError: ``devices`` is not an integer ≥ 1, or jax already started its backends
        with another device count (the flag must come before the first computation).
    """
    if devices is not None and (
        isinstance(devices, bool) or not isinstance(devices, int) or devices < 1
    ):
        raise ValueError(f"--devices must be an integer >= 1, got {devices!r}")
    global _requested
    if devices is not None:
        _requested = devices
    if devices is None and not every_core:
        return "host devices as XLA_FLAGS says"
    if _backend_started():
        import jax

        have = len(jax.devices("cpu"))
        if devices is None:
            return f"jax had already started: {have} host device(s)"
        if have == devices:
            return f"{devices} host device(s) (--devices)"
        raise ValueError(
            f"--devices {devices}: jax has already started with {have} host device(s); "
            "call use_host_devices before the first jax computation"
        )
    current = os.environ.get("XLA_FLAGS", "")
    if devices is None:
        if current.strip():
            return f"XLA_FLAGS is set ({current.strip()}); host devices left as it says"
        devices = _cores()
        why = "one per CPU core; --devices 1 for a single device"
    else:
        why = "--devices"
    os.environ["XLA_FLAGS"] = (_FLAG_RE.sub("", current).strip() + f" {FLAG}={devices}").strip()
    return f"{devices} host device(s) ({why})"


def device_summary() -> str:
    """``"4 cpu devices"``, ``"1 gpu device"``, … (imports jax)."""
    import jax

    devices = jax.devices()
    kind = devices[0].platform
    hosts = jax.process_count()
    where = f" over {hosts} processes" if hosts > 1 else ""
    return f"{len(devices)} {kind} device{'s' if len(devices) != 1 else ''}{where}"


def initialize_distributed() -> str:
    """``jax.distributed.initialize`` for ``jaxrl train --distributed``; returns a note.

    On a cluster jax recognises (SLURM, Open MPI, Kubernetes …) everything is detected.
    On a plain list of hosts, start the same command on every host with
    ``JAX_COORDINATOR_ADDRESS=HOST0:PORT``, ``JAXRL_NUM_PROCESSES=N`` and
    ``JAXRL_PROCESS_ID=i`` (0 … N−1) in the environment. CPU processes exchange
    collectives through gloo.
    """
    import jax

    if not os.environ.get("JAX_PLATFORMS") or "cpu" in os.environ["JAX_PLATFORMS"]:
        # Without an implementation CPU devices of different processes cannot all-reduce.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    for env, name in (("JAXRL_NUM_PROCESSES", "num_processes"), ("JAXRL_PROCESS_ID", "process_id")):
        value = os.environ.get(env)
        if value is not None:
            if not value.strip().isdigit():
                raise ValueError(f"{env} must be a whole number >= 0, got {value!r}")
            kwargs[name] = int(value)
    if kwargs and not os.environ.get("JAX_COORDINATOR_ADDRESS"):
        raise ValueError(
            "JAXRL_NUM_PROCESSES / JAXRL_PROCESS_ID need JAX_COORDINATOR_ADDRESS=HOST:PORT "
            "(the host of process 0)"
        )
    jax.distributed.initialize(**kwargs)
    return f"process {jax.process_index()} of {jax.process_count()}"
