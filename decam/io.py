"""Writing outputs: every file goes to a temporary name first and is renamed when complete."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_open(path) as f:
        np.save(f, array)


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """``(H, W)`` or ``(H, W, 3)`` uint8 array → PNG."""
    with atomic_open(path) as f:
        Image.fromarray(rgb).save(f, format="PNG")


def save_json(path: str | Path, data: Any) -> None:
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")


def safe_stem(name: str) -> str:
    """A file-name stem that cannot leave the output folder (no separators, no leading dots)."""
    stem = re.sub(r"[^\w.\-]+", "_", Path(name).stem).lstrip(".")
    return stem or "image"
