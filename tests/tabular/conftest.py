"""The tabular tests write nothing to the session's persistent compilation cache.

In the full suite an xdist worker crashed in three runs (an abort twice, a segmentation fault
once; one of them in CI) inside jax's ``executable.serialize()`` while writing the n-step SARSA
truncation test's program to the cache (tests/conftest.py); alone, or after the tests that ran
before it on that worker, the test passes, also with every program written. Turning
``jax_enable_compilation_cache`` off inside the test did not help: jax decides once per process
whether the cache is used. What jax checks before every write is the compile-time threshold,
so here it is set beyond any compile: the programs are small, they are compiled and not written.
"""

import jax
import pytest

_NAME = "jax_persistent_cache_min_compile_time_secs"


@pytest.fixture(autouse=True)
def no_cache_writes():
    before = jax.config.values[_NAME]
    jax.config.update(_NAME, 1e9)
    yield
    jax.config.update(_NAME, before)
