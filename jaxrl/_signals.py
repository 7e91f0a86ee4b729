"""Ctrl-C between chunks, for the host loop of every run (:mod:`jaxrl.run.loop`).

A KeyboardInterrupt raised at an arbitrary point can land inside a checkpoint write or
inside a library holding a lock (JAX's compilation cache, orbax), leaving a file half
written or a later call waiting forever. The loop instead catches the first SIGINT as a
request and stops at the next chunk boundary, after that chunk's metrics and checkpoint
are written.
"""

from __future__ import annotations

import signal
import sys
import threading

__all__ = ["StopOnInterrupt"]


class StopOnInterrupt:
    """Within ``with``: the first Ctrl-C sets ``requested``; a second stops at once.

    The loop checks ``requested`` after each chunk and raises ``KeyboardInterrupt``
    itself. Outside the main thread (where Python delivers no signals) nothing changes.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C: KeyboardInterrupt
        print("stopping after the current chunk (Ctrl-C again: at once); ", end="",
              file=sys.stderr, flush=True)  # fmt: skip

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
