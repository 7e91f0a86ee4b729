"""Benchmarks of jaxrl: speed beside rejax, learning results beside published numbers.

Run from the repository root: ``python -m benchmarks <suite> [--quick]`` (see
``benchmarks.harness.cli``); the report is ``benchmarks/RESULTS.md``, generated from
``benchmarks/results/*.json`` by ``python -m benchmarks report``. The scripts beside
this file (``ppo_speed.py``, ``pg_returns.py``, ``offpolicy_speed.py``,
``llm_generation.py``, ...) also run on their own; the harness imports their pieces.
"""
