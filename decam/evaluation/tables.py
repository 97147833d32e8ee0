"""The tables of ``decam evaluate``: per-method means, medians and paired differences against decam."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from decam.evaluation.scoring import ImageResult, Row


def _mean_std(values: np.ndarray) -> str:
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{100 * values.mean():.1f} ± {100 * std:.1f}"


def _paired(delta: np.ndarray) -> str:
    """Mean paired difference ×100 with its standard error (the spread of the mean, not of photos)."""
    se = delta.std(ddof=1) / np.sqrt(delta.size) if delta.size > 1 else 0.0
    return f"{100 * delta.mean():+.1f} ± {100 * se:.1f}"


def summary_table(rows: list[Row], methods: list[str]) -> list[dict[str, str]]:
    """Per method: images, DiffAUC mean ± std and median, insertion, deletion (×100), seconds, queries,
    and — when ``decam`` is among the methods — on how many images decam's DiffAUC is higher and by
    how much on average (paired over the same images)."""
    by = {m: [r for r in rows if r.method == m] for m in methods}
    decam_diff = {r.image: r.diff for r in by.get("decam", [])}
    table = []
    for m in methods:
        rs = by[m]
        if not rs:
            continue
        diff = np.array([r.diff for r in rs])
        entry = {
            "method": m,
            "images": str(len(rs)),
            "DiffAUC": _mean_std(diff),
            "DiffAUC median": f"{100 * np.median(diff):.1f}",
            "insertion": _mean_std(np.array([r.insertion for r in rs])),
            "deletion": _mean_std(np.array([r.deletion for r in rs])),
            "s / image": f"{np.mean([r.seconds for r in rs]):.2f}",
            "queries / image": f"{np.mean([r.queries for r in rs]):.0f}",
        }
        if decam_diff:
            paired = np.array([decam_diff[r.image] - r.diff for r in rs if r.image in decam_diff])
            wins = int((paired > 0).sum())
            entry["decam better"] = "—" if m == "decam" else f"{wins}/{paired.size}"
            entry["decam − method (s.e.)"] = "—" if m == "decam" else _paired(paired)
        table.append(entry)
    return table


def markdown_table(table: list[dict[str, str]]) -> str:
    if not table:
        return "(no images evaluated)\n"
    head = list(table[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(entry[h] for h in head) + " |" for entry in table]
    return "\n".join(lines) + "\n"


def summary_markdown(rows: list[Row], methods: list[str], model_name: str, failures: list[ImageResult]) -> str:
    n_images = len({r.image for r in rows})
    out = [
        f"# Insertion / deletion on {n_images} images, model {model_name}\n",
        "AUCs ×100 (mean ± sample std over images); DiffAUC = insertion − deletion, higher is better. "
        "RISE protocol: deletion sets pixels to 0 in pixel space, insertion starts from a Gaussian blur "
        "(kernel 11, σ=5); H·W/224 pixels per step; softmax probability of the target class.\n",
        markdown_table(summary_table(rows, methods)),
    ]
    if failures:
        out.append(f"\n## Skipped images ({len(failures)})\n")
        out += [f"- {r.error}" for r in failures]
        out.append("")
    return "\n".join(out)
