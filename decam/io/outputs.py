"""The files one explanation leaves behind: map (npy, png), overlay and a JSON record; and the
run's list of failed items."""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import numpy as np

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
    """Whether ``stem``'s outputs were all written and are whole (see :func:`output_problem`)."""
    return output_problem(out_dir, stem) is None


def output_problem(out_dir: Path, stem: str) -> str | None:
    """None when ``stem``'s outputs are complete and whole, else what is wrong with them, in a few words.

    The JSON is written last, atomically, and lists the maps of a several-target run; every map
    (and overlay present) must also read back whole: decam's writes are atomic, but copies, full
    disks and other tools truncate files.
    """
    out_dir = Path(out_dir)
    record = out_dir / f"{stem}.json"
    if not record.is_file():
        return f"{record.name} missing"
    try:
        data = json.loads(record.read_text())
        listed = data.get("targets") or []
        files = [f for entry in listed for f in (entry["saliency"], entry["saliency_png"])] if len(listed) > 1 else \
            [f"{stem}.saliency.npy", f"{stem}.saliency.png"]
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return f"{record.name} is damaged"
    overlays = [f"{f[:-len('.saliency.png')]}.overlay.png" for f in files if f.endswith(".saliency.png")]
    for name in files + [o for o in overlays if (out_dir / o).exists()]:
        if not (out_dir / name).is_file():
            return f"{name} missing"
        if not _whole(out_dir / name):
            return f"{name} is truncated or damaged"
    return None


def _whole(path: Path) -> bool:
    """Whether a ``.npy`` has all the bytes its header promises, or a ``.png`` decodes to the end."""
    try:
        if path.suffix == ".npy":
            with path.open("rb") as f:
                fmt = np.lib.format
                read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
                shape, _, dtype = read(f)
                expected = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            return path.stat().st_size == expected
        from PIL import Image

        with Image.open(path) as im:
            im.load()
        return True
    except Exception:  # any failure to read it back means it is not whole
        return False


def map_files(stem: str, saliency: np.ndarray, image) -> list[tuple[str, object, object]]:
    """``(file name, save function, data)`` for one map: ``<stem>.saliency.npy``, ``.saliency.png`` and,
    given the model input ``image``, ``.overlay.png``."""
    files = [(f"{stem}.saliency.npy", save_npy, saliency), (f"{stem}.saliency.png", save_png, colorize(saliency))]
    if image is not None:
        files.append((f"{stem}.overlay.png", save_png, overlay(image, saliency)))
    return files


def explanation_record(name: str, exp) -> dict:
    """The JSON record of one explanation without its map files: image, (first) target, scores, queries,
    seconds, why it stopped, config, history, and a remote model's counters."""
    record = {
        "image": name,
        "target": exp.target,
        "class_name": exp.class_name,
        "score": exp.score,
        "probability": exp.probability,
        "queries": exp.queries,
        "seconds": round(exp.seconds, 3),
        "stopped": getattr(exp, "stopped", "generations"),
        "config": exp.config,
        "history": exp.history,
    }
    if getattr(exp, "remote", None):  # a model behind a connection: images scored, HTTP requests, retries
        record["remote"] = dict(exp.remote)
    return record


def write_explanation(
    out_dir: Path, name: str, exp, used: set[str] | None = None, stem: str | None = None
) -> str:
    """Write ``<stem>.saliency.npy``, ``.saliency.png``, ``.overlay.png`` and ``.json``; return the stem.

    ``exp`` is an explanation (decam.search.explanation.Explanation or anything with its fields).
    With several targets each class gets its own set, ``<stem>.<class index>.saliency.npy`` and so
    on, and the JSON lists them. ``stem`` defaults to a unique stem derived from ``name``. The JSON
    goes last, so its presence marks a complete set of outputs.
    """
    stem = stem or unique_stem(name, used if used is not None else set())
    record = explanation_record(name, exp)
    targets = getattr(exp, "targets", None) or []
    if len(targets) > 1:
        writes, record["targets"] = [], []
        for t in targets:
            files = map_files(f"{stem}.{t.target}", t.saliency, exp.image)
            writes += files
            record["targets"].append({"target": t.target, "class_name": t.class_name, "score": t.score,
                                      "probability": t.probability, "saliency": files[0][0],
                                      "saliency_png": files[1][0]})
    else:
        writes = map_files(stem, exp.saliency, exp.image)
    writes.append((f"{stem}.json", save_json, record))  # rendered all first: the files land close together
    written: list[Path] = []
    with contextlib.suppress(FileNotFoundError):  # redoing: no old record vouches for a half-new set meanwhile
        (out_dir / f"{stem}.json").unlink()
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
