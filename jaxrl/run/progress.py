"""Progress of a run: a rich bar on a terminal, plain lines when stdout is not one.

Piped, under ``nohup`` or in CI a bar shows nothing until the run ends, so there the
same numbers are printed as one line at most every ``JAXRL_PROGRESS_EVERY`` seconds
(default 10) and once at the end of each program. The rate counts from the moment
compiling is over (:meth:`Progress.started`), so it is the speed of the compiled
program, not of compiling.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["Progress"]

DEFAULT_EVERY_S = 10.0


def _every_s() -> float:
    text = os.environ.get("JAXRL_PROGRESS_EVERY", "")
    try:
        return max(0.0, float(text)) if text else DEFAULT_EVERY_S
    except ValueError:
        return DEFAULT_EVERY_S


class Progress:
    """One task per compiled program: ``add`` → ``started`` → ``update``… → ``stop``.

    Args:
      name: shown before the numbers (``"ppo CartPole-v1"``).
      unit: what progress counts (``"env steps"``, ``"episodes"``, ``"updates"``).
      value_label: what the number after the rate is (``"last-update return"``).
      enabled: False shows nothing.
      stream: where the output goes (default stdout); a terminal gets a bar.
    """

    def __init__(
        self,
        name: str,
        unit: str = "env steps",
        value_label: str = "last-update return",
        enabled: bool = True,
        stream: TextIO | None = None,
    ):
        self.name, self.unit, self.value_label = name, unit, value_label
        self.stream = stream or sys.stdout
        self.mode = None
        if enabled:
            self.mode = "bar" if _isatty(self.stream) else "lines"
        self.every_s = _every_s()
        self.bar = self.task = None
        self.total = self.runs = 0
        self.t_start = self.t_printed = None
        self.done_at_start = 0
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    f"{unit} {{task.fields[rate]}} {{task.fields[label]}} {{task.fields[value]}}"
                ),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self.bar.start()

    def add(self, total: int, runs: int = 1) -> None:
        """A new compiled program of ``total`` units per run, ``runs`` runs at once."""
        self.total, self.runs = int(total), int(runs)
        self.t_start = None
        if self.bar is not None:
            self.task = self.bar.add_task(
                f"{self.name} (compiling)", total=self.total, rate="", label="", value="-"
            )
        elif self.mode == "lines":
            self._print(f"{self.name}: compiling")

    def started(self, done: int = 0) -> None:
        """Compiling is over; ``done`` units per run were already done (a resumed run)."""
        self.t_start = self.t_printed = time.perf_counter()
        self.done_at_start = int(done)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, description=self.name)

    def rate(self, done: int) -> float | None:
        """Units per second over all runs since :meth:`started` (None before it)."""
        if self.t_start is None or done <= self.done_at_start:
            return None
        elapsed = time.perf_counter() - self.t_start
        return (done - self.done_at_start) * self.runs / max(elapsed, 1e-9)

    def update(self, done: int, value: float | None = None) -> None:
        """``done`` units per run so far; ``value`` is the number named ``value_label``."""
        if self.mode is None:
            return
        rate = self.rate(done)
        shown = "-" if value is None else f"{value:.4g}"
        if self.bar is not None:
            self.bar.update(
                self.task,
                completed=done,
                description=self.name,
                rate="" if rate is None else f"({rate:,.0f}/s)",
                label=self.value_label,
                value=shown,
            )
            return
        now = time.perf_counter()
        last = done >= self.total
        if not last and self.t_printed is not None and now - self.t_printed < self.every_s:
            return
        self.t_printed = now
        pct = 100.0 * done / max(self.total, 1)
        speed = "" if rate is None else f", {rate:,.0f} {self.unit}/s"
        elapsed = "" if self.t_start is None else f", {now - self.t_start:.0f} s"
        self._print(
            f"{self.name}: {done:,}/{self.total:,} {self.unit} ({pct:.0f}%){speed}, "
            f"{self.value_label} {shown}{elapsed}"
        )

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
