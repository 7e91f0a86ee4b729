"""The benchmark harness: suites, statistics, figures and the generated report.

Modules: ``cli`` (``main(argv) -> int``), ``common`` (provenance, suite JSON),
``stats`` (IQM, stratified bootstrap), ``figures``, ``report`` and ``report_suites``
(RESULTS.md and the README's results section), one module per suite: ``returns``, ``speed``,
``minatar``, ``tabular``, ``llm``, ``sweep``.
"""

from benchmarks.harness.cli import SUITES, main

__all__ = ["SUITES", "main"]
