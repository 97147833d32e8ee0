"""Figures of an evaluation: insertion / deletion curves per image (paper Fig. 6) and a gallery (Figs. 3–5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from decam.evaluation.metrics import CurveScores
from decam.io.pictures import overlay, to_uint8


def curves_figure(title: str, class_name: str, scores: dict[str, CurveScores],
                  swapped: dict[str, CurveScores] | None = None) -> Figure:
    """Insertion and deletion panels — target probability against the fraction of pixels moved — each
    titled with its substrate; a second row for the swapped substrates when ``swapped`` is given."""
    sets = [scores] + ([swapped] if swapped else [])
    fig = Figure(figsize=(10, 4 * len(sets)), dpi=100, layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(sets), 2, sharey=True, squeeze=False))
    for row, curves in zip(axes, sets):
        for ax, kind in zip(row, ("insertion", "deletion")):
            substrate = ""
            for method, s in curves.items():
                curve = getattr(s, f"{kind}_curve")
                substrate = getattr(s, f"{kind}_substrate")
                ax.plot(np.linspace(0, 100, len(curve)), curve, label=f"{method} ({100 * getattr(s, kind):.1f})")
            where = "from" if kind == "insertion" else "to"
            ax.set_title(f"{kind} {where} {substrate} (AUC ×100)")
            ax.set_xlabel(f"% pixels {'inserted' if kind == 'insertion' else 'deleted'}")
            ax.set_xlim(0, 100)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        row[0].set_ylabel(f"p({class_name})")
    fig.suptitle(title)
    return fig


def _normalized(sal: np.ndarray) -> np.ndarray:
    """Map to [0, 1] for display, clipping the 1% tails so a few extreme pixels (IG) do not flatten it."""
    lo, hi = np.percentile(sal, [1, 99])
    return np.clip((sal - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(sal)


def gallery(entries: Sequence[tuple[str, torch.Tensor, dict[str, np.ndarray]]]) -> Figure:
    """Rows of ``(stem, image (3, H, W), {method: map})``: the photo, then each method's map over it."""
    methods = list(entries[0][2])
    cols = 1 + len(methods)
    fig = Figure(figsize=(1.8 * cols, 1.8 * len(entries)), dpi=100, layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(entries), cols, squeeze=False))
    for row, (stem, image, maps) in enumerate(entries):
        axes[row, 0].imshow(to_uint8(image))
        axes[row, 0].set_ylabel(stem[:24], fontsize=7)
        for col, method in enumerate(methods, start=1):
            axes[row, col].imshow(overlay(image, _normalized(maps[method])))
    for col, title in enumerate(["image", *methods]):
        axes[0, col].set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
