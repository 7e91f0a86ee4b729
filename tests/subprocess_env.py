"""The environment of a test's subprocess that needs several forced host devices."""

import os


def host_devices_env(count: int) -> dict[str, str]:
    """``os.environ`` with ``count`` host devices added to ``XLA_FLAGS``, keeping the flags
    tests/conftest.py set for every process of the run (so both sides compile alike)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"
    return {**os.environ, "XLA_FLAGS": flags.strip()}
