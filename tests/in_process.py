"""Documented commands and scripts run inside the test process (tests/test_docs.py,
tests/test_guides.py): the same function the ``jaxrl`` script calls, or the script run as
``__main__``, without a new interpreter importing jax and the rest first."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_in_process(argv: list[str], cwd: Path, monkeypatch, what: str, quick=True) -> None:
    """``jaxrl ARGS`` or ``python SCRIPT ARGS`` inside this process, as the shell would run it
    in ``cwd`` (with ``JAXRL_QUICK=1`` if ``quick``); fails on a non-zero exit.

    Modules a script imported from examples/ (the guides' ``_guide``, an example another one
    imports) are forgotten afterwards: each reads ``JAXRL_QUICK`` when it is imported. So are
    the environments it registered (guide 04 registers one), as its own interpreter would."""
    import matplotlib.pyplot as plt

    from jaxrl.envs import registry

    modules = set(sys.modules)
    with monkeypatch.context() as m:
        m.chdir(cwd)
        if quick:
            m.setenv("JAXRL_QUICK", "1")
        m.setenv("MPLBACKEND", "Agg")
        m.setattr(sys, "path", list(sys.path))  # a script's sys.path.insert stays with it
        m.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
        if argv[0] == "jaxrl":
            from jaxrl.cli import main

            code = main(argv[1:])
        else:
            script = str(ROOT / argv[1])
            m.setattr(sys, "argv", [script, *argv[2:]])
            try:
                runpy.run_path(script, run_name="__main__")
                code = 0
            except SystemExit as e:
                code = e.code or 0
        plt.close("all")
    for name in set(sys.modules) - modules:
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(EXAMPLES)):
            del sys.modules[name]
    assert code == 0, f"{what}: exit {code}"
