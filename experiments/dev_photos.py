"""The dev photos every study here uses, and their one fixed split into a tune half and a report half.

The split (made once, before any study of the trust issue): the photos sorted by file name, even
positions (0, 2, 4, …) are the **tune** half — anything decam's default is chosen on — and odd
positions (1, 3, 5, …) the **report** half, on which every table is measured. ``python
experiments/dev_photos.py`` prints both lists.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-dev"
SUFFIXES = {".jpeg", ".jpg", ".png"}


def photos(folder: str | Path = DEFAULT_FOLDER) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"no dev photos at {folder} (pass --photos)")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)


def split(folder: str | Path = DEFAULT_FOLDER) -> tuple[list[Path], list[Path]]:
    """(tune half, report half)."""
    every = photos(folder)
    return every[0::2], every[1::2]


def labels(folder: str | Path = DEFAULT_FOLDER) -> dict[str, int]:
    """File name → ImageNet class index, from the folder's ``labels.csv``."""
    with open(Path(folder) / "labels.csv", newline="") as f:
        return {row["file"]: int(row["class_index"]) for row in csv.DictReader(f)}


def spread(items: list, n: int | None) -> list:
    """``n`` items evenly spread over ``items`` (all of them when ``n`` is None or large)."""
    if n is None or n >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / max(n - 1, 1))] for i in range(n)]


if __name__ == "__main__":
    tune, report = split(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_FOLDER)
    print(f"tune ({len(tune)}):", " ".join(p.name for p in tune))
    print(f"report ({len(report)}):", " ".join(p.name for p in report))
