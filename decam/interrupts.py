"""SIGTERM and Ctrl-C inside decam: a process-wide request to stop, and sections they must not cut.

The command line's signal handlers (:mod:`decam.cli.app`) call :func:`deliver`: outside a
:func:`deferred` section the exception is raised at once in the main thread, as Python does for
Ctrl-C; inside one (creating or ending an MLflow run, where an exception half-way would leave
the run RUNNING for ever) it is raised when the section ends. Signals reach only the main thread,
so searches running in worker threads (several images sharing a model batch) poll
:func:`check` between generations instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_STOP = threading.Event()
_depth = 0
_pending: BaseException | None = None


class Stopped(Exception):
    """Raised in a worker thread's search once a stop was requested."""


def request_stop() -> None:
    _STOP.set()


def reset() -> None:
    """Forget an earlier stop request (a new command in the same process)."""
    global _pending
    _STOP.clear()
    _pending = None


def stop_requested() -> bool:
    return _STOP.is_set()


def check() -> None:
    """Raise :class:`Stopped` if a stop was requested."""
    if _STOP.is_set():
        raise Stopped("stopped by a signal")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def deliver(error: BaseException) -> None:
    """Raise ``error`` now (from a signal handler), or when the current deferred section ends."""
    global _pending
    if _depth > 0:
        _pending = _pending or error
        return
    raise error


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A section a signal must not cut in half: its exception waits until the section is over."""
    global _depth, _pending
    if not _main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            error, _pending = _pending, None
            raise error
