"""The files one explanation leaves behind: map (npy, png), overlay and a JSON record; and the
run's list of failed items."""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

from decam.io import atomic_open, safe_stem, save_json, save_npy, save_png
from decam.io.pictures import colorize, overlay

FAILURES_FILE = "failures.csv"
"""Written to the output folder when some items failed: columns ``image, exit_code, error``."""


def unique_stem(name: str, used: set[str]) -> str:
    """``safe_stem(name)``, numbered ``_2``, ``_3``, … when an earlier item of the run took it."""
    stem, i = safe_stem(name), 2
    candidate = stem
    while candidate in used:
        candidate, i = f"{stem}_{i}", i + 1
    used.add(candidate)
    return candidate


def is_complete(out_dir: Path, stem: str) -> bool:
    """Whether ``stem``'s outputs were all written (the JSON is written last, atomically)."""
    return all((out_dir / f"{stem}{suffix}").is_file() for suffix in (".saliency.npy", ".saliency.png", ".json"))


def write_explanation(
    out_dir: Path, name: str, exp, used: set[str] | None = None, stem: str | None = None
) -> str:
    """Write ``<stem>.saliency.npy``, ``.saliency.png``, ``.overlay.png`` and ``.json``; return the stem.

    ``exp`` is an explanation (decam.search.explanation.Explanation or anything with its fields).

    ``stem`` defaults to a unique stem derived from ``name``. The JSON goes last, so its presence
    marks a complete set of outputs.
    """
    stem = stem or unique_stem(name, used if used is not None else set())
    record = {
        "image": name,
        "target": exp.target,
        "class_name": exp.class_name,
        "score": exp.score,
        "probability": exp.probability,
        "queries": exp.queries,
        "seconds": round(exp.seconds, 3),
        "config": exp.config,
        "history": exp.history,
    }
    if getattr(exp, "remote", None):  # a model behind a connection: images scored, HTTP requests, retries
        record["remote"] = dict(exp.remote)
    writes = [(f"{stem}.saliency.npy", save_npy, exp.saliency), (f"{stem}.saliency.png", save_png, colorize(exp.saliency))]
    if exp.image is not None:
        writes.append((f"{stem}.overlay.png", save_png, overlay(exp.image, exp.saliency)))
    writes.append((f"{stem}.json", save_json, record))  # rendered all first: the files land close together
    written: list[Path] = []
    try:
        for file_name, save, data in writes:
            save(out_dir / file_name, data)
            written.append(out_dir / file_name)
    except BaseException:  # no incomplete set left behind by a failed write (disk full, Ctrl-C)
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return stem


def write_failures(out_dir: Path, failures: list[tuple[str, int, str]]) -> Path:
    """Write (or, with no failures, remove) ``failures.csv``: one row per failed item."""
    path = out_dir / FAILURES_FILE
    if not failures:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return path
    with atomic_open(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["image", "exit_code", "error"])
        writer.writerows(failures)
    return path
