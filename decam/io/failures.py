"""``failures.csv``, shared by every run that writes into one output folder.

The file lists the items whose latest attempt failed (``image, exit_code, error``). A run changes
only its own rows, under a folder lock, so two runs in one folder keep each other's failures. A
run holds a lock file for its lifetime listing the items it failed; when a new run starts, rows
whose run has ended are dropped, so (as for a single run) the file describes the runs since the
last one that started alone, and a clean rerun removes it.
"""

from __future__ import annotations

import contextlib
import csv
import secrets
from collections.abc import Iterable
from pathlib import Path

from decam.io.claims import FileLock, is_held, lock_path
from decam.io.outputs import FAILURES_FILE, write_failures

_RUN_PREFIX = "failures-run."


class FailureLog:
    """This run's view of ``folder/failures.csv``; use as a context manager around the run."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FAILURES_FILE
        self._run: FileLock | None = None

    def __enter__(self) -> FailureLog:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Start this run: take its run lock, then drop the rows of runs that have ended."""
        self._run = FileLock(lock_path(self.folder, f"{_RUN_PREFIX}{secrets.token_hex(6)}"))
        self._run.acquire()
        with self._folder_lock():
            live = self._live_items()
            self._write([row for row in self._read() if row[0] in live])

    def close(self) -> None:
        """End this run: its rows stay until a later run starts alone."""
        if self._run is not None:
            self._run.release()
            self._run = None

    def failed(self, image: str, exit_code: int, error: str) -> None:
        """Record ``image``'s failure (replacing an earlier row for it)."""
        with self._folder_lock():
            rows = [row for row in self._read() if row[0] != image]
            self._write([*rows, (image, exit_code, error)])
            if self._run is not None:
                with contextlib.suppress(OSError):  # the row is written; a full disk may refuse this note
                    self._run.write(image.replace("\n", " ") + "\n")

    def succeeded(self, image: str) -> None:
        """``image`` has its outputs now: drop its row, if any."""
        with self._folder_lock():
            rows = self._read()
            if any(row[0] == image for row in rows):
                self._write([row for row in rows if row[0] != image])

    def rows(self) -> list[tuple[str, int, str]]:
        return self._read()

    def _folder_lock(self) -> FileLock:
        return FileLock(lock_path(self.folder, "failures"))

    def _live_items(self) -> set[str]:
        """Items that runs still going in this folder (this one included) have failed."""
        items: set[str] = set()
        for path in self.folder.glob(f".{_RUN_PREFIX}*.lock"):
            mine = self._run is not None and path == self._run.path
            if mine or is_held(path):
                try:
                    items.update(path.read_text().splitlines()[1:])  # line 1: the holder
                except OSError:
                    continue
        return items

    def _read(self) -> list[tuple[str, int, str]]:
        try:
            with self.path.open(newline="") as f:
                return [(r["image"], int(r["exit_code"]), r["error"]) for r in csv.DictReader(f)]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, csv.Error):  # a damaged list describes nothing reliably
            return []

    def _write(self, rows: Iterable[tuple[str, int, str]]) -> None:
        write_failures(self.folder, list(rows))
