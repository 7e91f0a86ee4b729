"""Every test under tests/run compiles with XLA's expensive optimisations off, and so does
every process such a test starts.

At these tests' budgets compiling is most of their time (tests/conftest.py does the same for
tests/agents and tests/envs). Several tests here compare the numbers of a process they start
(forced host devices, two processes, a killed and resumed run) with the test process's own to
float32 rounding, so the flag goes to the subprocesses too, through the environment variable
jax reads at import (``JAX_DISABLE_MOST_OPTIMIZATIONS``): both sides compile the same way.
"""

import os

import jax
import pytest

_VAR = "JAX_DISABLE_MOST_OPTIMIZATIONS"


@pytest.fixture(scope="module", autouse=True)
def fast_compile_here_and_in_subprocesses():
    before, before_env = jax.config.values["jax_disable_most_optimizations"], os.environ.get(_VAR)
    jax.config.update("jax_disable_most_optimizations", True)
    os.environ[_VAR] = "1"
    yield
    jax.config.update("jax_disable_most_optimizations", before)
    if before_env is None:
        os.environ.pop(_VAR, None)
    else:
        os.environ[_VAR] = before_env
