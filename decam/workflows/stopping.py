"""A process-wide request to stop, set by the command line's SIGTERM / Ctrl-C handler.

Signals reach only the main thread; searches that run in worker threads (several images sharing a
model batch) check this flag between generations, so the process stops within a generation
instead of finishing every search in flight.
"""

from __future__ import annotations

import threading

_STOP = threading.Event()


class Stopped(Exception):
    """Raised in a worker thread's search once a stop was requested."""


def request_stop() -> None:
    _STOP.set()


def reset() -> None:
    _STOP.clear()


def stop_requested() -> bool:
    return _STOP.is_set()


def check() -> None:
    """Raise :class:`Stopped` if a stop was requested."""
    if _STOP.is_set():
        raise Stopped("stopped by a signal")
