"""The bookkeeping of ``decam explain`` (decam.workflows.explain): its jobs, their failures, the
outcome, and each image's search checkpoint in the output folder.

A search checkpoints itself after every generation to a hidden file beside the outputs,
``.<stem>.search.pt`` (decam.search.checkpoint), and the file goes once the image's outputs are
written. Like the outputs, it belongs to whoever holds the image's claim (decam.io.claims): a run
only creates, continues or deletes the checkpoints of images it has claimed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from decam.errors import EXIT_PARTIAL, DecamError

__all__ = ["CHECKPOINT_SUFFIX", "EMBEDDED_PHOTO", "ExplainOutcome", "Failure", "Job", "checkpoint_file",
           "describe_failure", "drop_checkpoint", "drop_finished_checkpoints", "plan_jobs"]

CHECKPOINT_SUFFIX = ".search.pt"
"""A search checkpoint is ``.<stem>.search.pt`` in the output folder."""

EMBEDDED_PHOTO = "coffee"
"""The name (and output stem) of the embedded photo, explained when no image is given."""


@dataclass(frozen=True)
class Job:
    """One image: its name as given, its path (None: the embedded photo) and its output stem."""

    name: str
    image: Path | None
    stem: str


class Failure(NamedTuple):
    """An image that failed, as a row of ``failures.csv``: its name, its exit code alone, one line naming it."""

    image: str
    exit_code: int
    error: str


def plan_jobs(images: Sequence[str | Path | None]) -> list[Job]:
    """One job per image, in order; stems are made unique in that order, so a rerun finds the same ones."""
    from decam.io.outputs import unique_stem

    used: set[str] = set()
    jobs = []
    for image in images:
        name = EMBEDDED_PHOTO if image is None else str(image)
        jobs.append(Job(name, None if image is None else Path(image), unique_stem(name, used)))
    return jobs


def describe_failure(name: str, error: Exception) -> Failure:
    """The failure row for an image that raised ``error``: decam's exit code for it and a one-line message."""
    msg = " ".join(str(error).split())
    if isinstance(error, DecamError):
        code = error.exit_code
    elif isinstance(error, OSError):
        code, msg = EXIT_PARTIAL, f"cannot write outputs ({msg})"
    else:  # a defect in decam or a plugin, not in the input
        code, msg = EXIT_PARTIAL, f"unexpected {type(error).__name__}: {msg} (--debug shows the traceback)"
    return Failure(name, code, msg if msg.startswith(name) else f"{name}: {msg}")


@dataclass
class ExplainOutcome:
    """What a batch came to: how many images it had, which failed, which another run took, and
    whether tracking failed."""

    total: int
    failures: list[Failure] = field(default_factory=list)
    failures_file: Path | None = None
    tracking_error: DecamError | None = None
    elsewhere: list[tuple[Job, str]] = field(default_factory=list)
    """Images left to another run in the same folder, with why (claimed by it, or done by it meanwhile)."""

    @property
    def exit_code(self) -> int:
        """0; 1 when some images failed; every image failed: the worst of their codes; else the tracking error's."""
        if self.failures:
            if len(self.failures) < self.total:
                return EXIT_PARTIAL
            return max(f.exit_code for f in self.failures)
        return self.tracking_error.exit_code if self.tracking_error is not None else 0


def checkpoint_file(out_dir: str | Path, stem: str) -> Path:
    """The hidden file that ``stem``'s search checkpoints to in ``out_dir``."""
    return Path(out_dir) / f".{stem}{CHECKPOINT_SUFFIX}"


def drop_checkpoint(out_dir: str | Path, stem: str) -> None:
    """Delete ``stem``'s checkpoint if there is one (the caller holds the image's claim); a file that
    cannot be deleted stays (it is only ever continued by the same search, so it does no harm)."""
    with contextlib.suppress(OSError):
        checkpoint_file(out_dir, stem).unlink()


def drop_finished_checkpoints(out_dir: str | Path, jobs: Iterable[Job]) -> None:
    """Delete the checkpoints of ``jobs`` (images whose outputs are complete) unless another run holds
    the image: left by a run stopped between writing the outputs and deleting the checkpoint, or by a
    rerun without ``--resume`` stopped mid-search."""
    from decam.io.claims import try_claim

    for job in jobs:
        if not checkpoint_file(out_dir, job.stem).exists():
            continue
        claim = try_claim(out_dir, job.stem)
        if claim is not None:
            drop_checkpoint(out_dir, job.stem)
            claim.release()
