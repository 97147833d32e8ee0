"""What a command line names: image files and folders mixed with ``key=value`` config overrides."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from decam.errors import InputError


def split_items(items: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(images, overrides)``: a token with ``=`` that is not an existing file is an override; the rest are images."""
    images: list[str] = []
    overrides: list[str] = []
    for item in items:
        (overrides if "=" in item and not Path(item).exists() else images).append(item)
    return images, overrides


def expand_images(items: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders → their image files, sorted (a folder without any is an InputError)."""
    from decam.io.images import IMAGE_SUFFIXES

    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise InputError(f"{p}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out += found
        else:
            out.append(p)
    return out
