"""The files one explanation leaves behind: map (npy, png), overlay and a JSON record."""

from __future__ import annotations

from pathlib import Path

from decam.explain import Explanation
from decam.io import safe_stem, save_json, save_npy, save_png
from decam.viz import colorize, overlay


def unique_stem(name: str, used: set[str]) -> str:
    stem, i = safe_stem(name), 2
    candidate = stem
    while candidate in used:
        candidate, i = f"{stem}_{i}", i + 1
    used.add(candidate)
    return candidate


def write_explanation(out_dir: Path, name: str, exp: Explanation, used: set[str] | None = None) -> str:
    """Write ``<stem>.saliency.npy``, ``.saliency.png``, ``.overlay.png`` and ``.json``; return the stem.

    The JSON goes last, so its presence marks a complete set of outputs.
    """
    stem = unique_stem(name, used if used is not None else set())
    save_npy(out_dir / f"{stem}.saliency.npy", exp.saliency)
    save_png(out_dir / f"{stem}.saliency.png", colorize(exp.saliency))
    if exp.image is not None:
        save_png(out_dir / f"{stem}.overlay.png", overlay(exp.image, exp.saliency))
    save_json(out_dir / f"{stem}.json", {
        "image": name,
        "target": exp.target,
        "class_name": exp.class_name,
        "score": exp.score,
        "probability": exp.probability,
        "queries": exp.queries,
        "seconds": round(exp.seconds, 3),
        "config": exp.config,
        "history": exp.history,
    })
    return stem
