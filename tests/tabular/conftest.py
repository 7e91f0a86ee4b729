"""The tabular tests compile without the session's persistent compilation cache.

In the full suite an xdist worker crashed twice (an abort, then a segmentation fault) inside
jax's ``executable.serialize()`` while writing the n-step SARSA truncation test's program to
the cache (tests/conftest.py); alone the test passes. The programs here are small, so they
are compiled and not written.
"""

import jax
import pytest


@pytest.fixture(autouse=True)
def no_persistent_cache():
    before = jax.config.values["jax_enable_compilation_cache"]
    jax.config.update("jax_enable_compilation_cache", False)
    yield
    jax.config.update("jax_enable_compilation_cache", before)
