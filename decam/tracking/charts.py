"""Charts for tracked runs and studies: insertion/deletion curves, DiffAUC per swept value, heat maps.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, so no global state or GUI backend)
and written atomically as PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from decam.io import atomic_open


def _save(fig, path: str | Path) -> None:
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")


def _figure(width: float = 5.0, height: float = 3.6):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def curves_plot(path: str | Path, insertion: np.ndarray, deletion: np.ndarray, title: str = "") -> None:
    """Target probability along the insertion and deletion paths, AUCs in the legend."""
    from decam.evaluation.metrics import auc

    fig = _figure()
    ax = fig.add_subplot()
    for name, curve, colour in (("insertion", insertion, "tab:green"), ("deletion", deletion, "tab:red")):
        x = np.linspace(0.0, 1.0, len(curve))
        ax.plot(x, curve, color=colour, label=f"{name} AUC {auc(curve):.3f}")
        ax.fill_between(x, curve, color=colour, alpha=0.15)
    ax.set(xlabel="fraction of pixels inserted / deleted", ylabel="target probability", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(title or f"DiffAUC {auc(insertion) - auc(deletion):.3f}")
    ax.legend(loc="best")
    _save(fig, path)


def _sort_key(value):
    return (0, float(value), "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0.0, str(value))


def value_plot(path: str | Path, key: str, values: Sequence, scores: Sequence[float], ylabel: str = "DiffAUC") -> None:
    """Mean ± std of ``scores`` grouped by the swept ``values`` of ``key`` (one point per value)."""
    groups: dict = {}
    for v, s in zip(values, scores):
        groups.setdefault(v, []).append(s)
    order = sorted(groups, key=_sort_key)
    numeric = all(_sort_key(v)[0] == 0 for v in order)
    x = [float(v) for v in order] if numeric else list(range(len(order)))
    mean = [float(np.mean(groups[v])) for v in order]
    std = [float(np.std(groups[v])) for v in order]
    fig = _figure()
    ax = fig.add_subplot()
    ax.errorbar(x, mean, yerr=std, marker="o", capsize=4, linestyle="-" if numeric else "none")
    if not numeric:
        ax.set_xticks(x, [str(v) for v in order])
    ax.set(xlabel=key, ylabel=f"{ylabel} (mean ± std)")
    ax.grid(alpha=0.3)
    _save(fig, path)


def heatmap(path: str | Path, keys: tuple[str, str], rows: Sequence[dict], score: str = "diffauc") -> None:
    """Mean ``score`` over every (value of ``keys[0]``, value of ``keys[1]``) cell; other keys averaged."""
    ky, kx = keys
    ys = sorted({r[ky] for r in rows}, key=_sort_key)
    xs = sorted({r[kx] for r in rows}, key=_sort_key)
    grid = np.full((len(ys), len(xs)), np.nan)
    for i, vy in enumerate(ys):
        for j, vx in enumerate(xs):
            cell = [r[score] for r in rows if r[ky] == vy and r[kx] == vx]
            if cell:
                grid[i, j] = float(np.mean(cell))
    fig = _figure(1.6 + 1.1 * len(xs), 1.2 + 0.7 * len(ys))
    ax = fig.add_subplot()
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set(xlabel=kx, ylabel=ky, title=f"mean {score}")
    finite = grid[np.isfinite(grid)]
    middle = float(finite.mean()) if finite.size else 0.0
    for i in range(len(ys)):
        for j in range(len(xs)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center",
                        color="black" if grid[i, j] > middle else "white", fontsize=9)
    fig.colorbar(im, ax=ax)
    _save(fig, path)
