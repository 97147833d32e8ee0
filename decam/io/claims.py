"""Cross-process claims on work in a shared folder, as file locks.

A claim is an ``flock(2)`` lock on a hidden file ``.<name>.lock``: the kernel drops it when its
holder exits, however it exits (``kill -9`` included), so no process id is ever guessed stale and
a reused id cannot keep a claim alive. The holder deletes the file when it lets go; a waiter that
locked a file meanwhile deleted notices (the path no longer names its file) and tries again. The
file holds its holder's process id and host, for messages. Works on local filesystems and NFSv4;
without ``fcntl`` (Windows) a claim always succeeds and nothing is shared.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

LOCK_SUFFIX = ".lock"


def lock_path(folder: str | Path, name: str) -> Path:
    """The hidden lock file of ``name`` in ``folder``."""
    return Path(folder) / f".{name}{LOCK_SUFFIX}"


class FileLock:
    """An exclusive lock on ``path`` shared by every process that can see the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, blocking: bool = True, timeout: float | None = None, poll: float = 0.05) -> bool:
        """Take the lock; without ``blocking`` (or after ``timeout`` seconds) give up and return False."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._try_once():
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            time.sleep(poll)

    def _try_once(self) -> bool:
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: lock already held by this object")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    return False
                try:  # the holder before us may have deleted the file between our open and lock
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    return self._try_once()
            with contextlib.suppress(OSError):  # who holds it is for messages only: a full disk still locks
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        self._fd = fd
        return True

    def write(self, text: str) -> None:
        """Append ``text`` to the held lock file (what the holder wants others to read)."""
        if self._fd is None:
            raise RuntimeError(f"{self.path}: lock not held")
        os.lseek(self._fd, 0, os.SEEK_END)
        os.write(self._fd, text.encode())

    def release(self) -> None:
        """Delete the file, then let go (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()


def try_claim(folder: str | Path, name: str) -> FileLock | None:
    """Claim ``name`` in ``folder`` if no live process holds it; None when one does."""
    lock = FileLock(lock_path(folder, name))
    return lock if lock.acquire(blocking=False) else None


def holder(folder: str | Path, name: str) -> str:
    """Who holds ``name``'s claim, as its lock file says (``pid N on HOST``), or ``another process``."""
    try:
        pid, _, host = lock_path(folder, name).read_text().splitlines()[0].partition(" ")
    except (OSError, IndexError):
        return "another process"
    return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")


def is_held(path: str | Path) -> bool:
    """Whether a live process holds the lock file at ``path`` (a free one is deleted on the way)."""
    lock = FileLock(path)
    try:
        if not lock.acquire(blocking=False):
            return True
    except FileNotFoundError:
        return False
    lock.release()
    return False


def remove_stale_locks(folder: str | Path) -> list[Path]:
    """Delete lock files in ``folder`` that no live process holds (left by ``kill -9``); return them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.glob(f".*{LOCK_SUFFIX}"):
        with contextlib.suppress(OSError):
            if not is_held(path):
                removed.append(path)
    return removed
