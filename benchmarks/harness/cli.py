"""``python -m benchmarks <suite> [--quick] [...]``: run a suite, write its JSON, figures, table.

Suites: ``speed``, ``returns``, ``minatar``, ``tabular``, ``llm``, ``sweep``; ``report``
regenerates benchmarks/RESULTS.md and the README's results section from
benchmarks/results/*.json.

    python -m benchmarks returns --quick                # minutes, tiny budgets -> benchmarks/out
    python -m benchmarks returns                        # full -> benchmarks/results + RESULTS.md
    python -m benchmarks returns --only ppo-CartPole    # one run, merged into the suite JSON
    python -m benchmarks speed --rounds 3               # beside rejax 0.1.3, alternating
    python -m benchmarks report

``main(argv) -> int`` is what a ``jaxrl bench`` subcommand can call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.harness import common

__all__ = ["SUITES", "main"]

SUITES = ("speed", "returns", "minatar", "tabular", "llm", "sweep")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0].strip("`")
    )
    p.add_argument("suite", choices=[*SUITES, "report"], help="the suite to run, or report")
    p.add_argument("--quick", action="store_true", help="tiny budgets (minutes); -> benchmarks/out")
    p.add_argument("--out", type=Path, default=None, help="folder of the suite JSON and figures")
    p.add_argument("--only", nargs="+", default=None, help="run only these rows (names/substrings)")
    p.add_argument("--all", action="store_true", help="also the secondary (long) rows")
    p.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    p.add_argument("--steps", type=int, default=None, help="minatar: environment steps per game")
    p.add_argument("--rounds", type=int, default=None, help="speed: alternating rounds")
    p.add_argument("--no-rejax", action="store_true", help="speed: skip the rejax runs")
    p.add_argument("--fresh", action="store_true", help="do not merge with rows already there")
    p.add_argument("--no-report", action="store_true", help="do not regenerate RESULTS.md")
    p.add_argument("--note", action="append", default=[], help="a note kept in the suite JSON")
    return p


def _log(msg: str) -> None:
    print(msg, flush=True)


def run_suite(args) -> Path:
    """Runs ``args.suite``; writes and returns the suite JSON's path."""
    from benchmarks.harness import report

    out = args.out or common.default_out(args.quick)
    started = time.time()
    notes = list(args.note)
    done: list[dict] = []

    def save(extra: dict) -> Path:
        # Saved after every row, so a suite stopped half-way keeps what it finished; the
        # first save of a --fresh run replaces the file, later ones merge with it.
        return common.save_suite(
            out, args.suite, args.quick, done, started, notes, extra,
            merge=not args.fresh or len(done) > 1,
        )  # fmt: skip

    def on_row(row: dict, extra: dict) -> None:
        done.append(row)
        save(extra)

    kw = dict(log=_log, on_row=on_row)
    if args.suite == "returns":
        from benchmarks.harness import returns

        rows, extra = returns.run_suite(args.quick, args.only, args.all, args.seeds, **kw)
    elif args.suite == "speed":
        from benchmarks.harness import speed

        rows, extra = speed.run_suite(args.quick, args.only, args.rounds, not args.no_rejax, **kw)
    elif args.suite == "minatar":
        from benchmarks.harness import minatar

        rows, extra = minatar.run_suite(args.quick, args.only, args.steps, args.seeds, **kw)
    elif args.suite == "tabular":
        from benchmarks.harness import tabular

        rows, extra = tabular.run_suite(args.quick, args.only, args.seeds, **kw)
    elif args.suite == "sweep":
        from benchmarks.harness import sweep

        rows, extra = sweep.run_suite(args.quick, args.only, **kw)
    else:
        from benchmarks.harness import llm

        rows, extra = llm.run_suite(args.quick, args.only, args.seeds, **kw)
    done[:] = rows
    path = save(extra)
    data = common.load_suite(path)
    figures_written = report.draw_figures(data, out / "figures")
    table = report.suite_markdown(data, figures_rel=Path("figures"))
    (out / f"{args.suite}.md").write_text(table)
    _log(table)
    _log(f"wrote {path}, {out / (args.suite + '.md')} and {len(figures_written)} figure(s)")
    if not args.quick and not args.no_report and Path(out).resolve() == common.RESULTS_DIR:
        report.write_report()
        _log(f"regenerated {report.RESULTS_MD} and {report.README_MD}")
    return path


def main(argv: list[str] | None = None) -> int:
    """The benchmark command; returns the exit status (2 for a bad argument)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.suite == "report":
            from benchmarks.harness import report

            paths = report.write_report(args.out or common.RESULTS_DIR)
            for p in paths:
                _log(f"wrote {p}")
            return 0
        run_suite(args)
    except common.BenchmarkArgumentError as e:
        print(f"python -m benchmarks: error: {e}", file=sys.stderr)
        return 2
    return 0
