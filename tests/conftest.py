"""Settings of the whole test session: one compilation cache for every process of a run,
and cheap compiles for the RL tests.

Tests compile the same programs many times: a sweep test compiles the one-value program
once per value, and the documented commands (tests/test_docs.py, tests/test_guides.py,
the CLI tests) start a fresh Python process each, which compiles again what another one
compiled a moment before. JAX's persistent compilation cache keys a compiled program by
its HLO, the jax version and the compiler flags, so a program met again is read back
instead of compiled: the same executable, the same numbers (tracing and lowering still
run every time).

The cache lives in a fresh temporary directory per ``pytest`` run, made by the main
process and handed through the environment to the xdist workers and to every subprocess
a test starts; it is deleted when the run ends. A user's own ``JAX_COMPILATION_CACHE_DIR``
is left alone.

Every test, and every process a test starts, compiles with XLA's most expensive
optimisations off (``JAX_DISABLE_MOST_OPTIMIZATIONS=1``, the environment variable jax reads
at import, set here before jax is imported and so inherited by the xdist workers and the
subprocesses): at the tests' budgets compiling is most of a test's time, and a slower program
costs less than the optimisations would (tests/core: 159 -> 145 CPU s; the TD3 sharded-runs
subprocess 38 -> 24.5; the PPO probe tests 91 -> 68). Tests that compare a subprocess's
numbers with the test process's own compile both sides the same way. A test whose time goes
to running its program rather than compiling it may turn them back on (tests/llm's
``xla_optimized``).
"""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# XLA:CPU's legacy loop emitters compile the tests' programs in half the time of the fusion
# emitters (a PPO quick-budget program at -O0: 2.3 -> 1.1 s).
FAST_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
if FAST_EMITTERS not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_EMITTERS}".strip()

import jax  # noqa: E402  (after the variable above: jax reads it at import)

_OWNED = "JAXRL_TEST_CACHE_OWNER"  # set to the pid of the process that made the directory

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxrl-test-xla-cache-")
    os.environ[_OWNED] = str(os.getpid())
    # Small programs too: at the tests' budgets most programs compile in well under the
    # 1 s that jax caches by default, and together they are most of the suite's time.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# jax reads these variables when it is imported; a plugin may have imported it already.
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
for _name, _type in (("min_compile_time_secs", float), ("min_entry_size_bytes", int)):
    _value = os.environ.get(f"JAX_PERSISTENT_CACHE_{_name.upper()}")
    if _value is not None:
        jax.config.update(f"jax_persistent_cache_{_name}", _type(_value))


# jax may have been imported by a plugin before this file ran.
jax.config.update(
    "jax_disable_most_optimizations", os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] == "1"
)


def pytest_unconfigure(config):
    """The process that made the cache directory (the main one) deletes it at the end."""
    if os.environ.get(_OWNED) == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


# The longest tests and their rough cost in CPU seconds (guides: measured one by one at
# load ~16, 2 cores; the rest from earlier full runs). Each starts processes that run
# documented commands or scripts, or runs a guide. xdist hands tests out in collection
# order, so in their natural place (near the end of the alphabet) two of them could be
# left running on one worker while the other has nothing to do; collected first, longest
# first, they are spread over both workers and the short tests fill the gaps.
LONG_FIRST = {
    "tests/test_guides.py::test_guide_06": 93,
    "tests/test_guides.py::test_guide_04": 75,
    "tests/run/test_multiprocess.py": 42,
    "tests/test_guides.py::test_guide_03": 42,
    "tests/test_guides.py::test_guide_05": 37,
    "tests/test_guides.py::test_guide_07": 30,
    "tests/test_docs.py::test_example[rlhf_pipeline": 29,
    "tests/test_docs.py::test_example[llm_end_to_end": 27,
    "tests/test_docs.py::test_example": 15,
    "tests/test_docs.py::test_readme_python_snippet": 8,
    "tests/test_guides.py": 7,
}
README_COMMAND_S = 5  # a README chain: about this much per command


def _expected_s(item) -> float:
    chain = getattr(item, "callspec", None) and item.callspec.params.get("chain")
    if item.nodeid.startswith("tests/test_docs.py::test_readme_command") and chain:
        return README_COMMAND_S * len(chain)
    return next((s for p, s in LONG_FIRST.items() if item.nodeid.startswith(p)), 0)


def pytest_collection_modifyitems(config, items):
    """The tests of ``LONG_FIRST`` and the README chains first, longest first; the rest in
    their order (a stable sort: the same order on every xdist worker)."""
    items.sort(key=lambda item: -_expected_s(item))
