"""The tables of ``decam evaluate``: per-method means and medians, and paired differences against decam
for every metric column (wins counted in each metric's own direction), paired over the same (image,
class). With several classes per image (``--targets``) each table is made twice: for the searched
class (rank 1) and for the other classes (ranks 2 and up)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from decam.evaluation.metrics.suite import Column

if TYPE_CHECKING:
    from decam.evaluation.scoring import ImageResult, Row

CURVE_COLUMNS = (Column("diff", "DiffAUC", True), Column("insertion", "insertion", True),
                 Column("deletion", "deletion", False))


def value(row: Row, key: str) -> float:
    """A metric of ``row``: one of its fields (``diff``, ``insertion``, ``deletion``) or a suite score
    (NaN where the row has none)."""
    if key in ("diff", "insertion", "deletion"):
        return float(getattr(row, key))
    return float(row.scores.get(key, float("nan")))


def _mean_std(values: np.ndarray, scale: float = 100.0, digits: int = 1) -> str:
    values = values[np.isfinite(values)]
    if not values.size:
        return "—"
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{scale * values.mean():.{digits}f} ± {scale * std:.{digits}f}"


def _paired(delta: np.ndarray, scale: float = 100.0, digits: int = 1) -> str:
    """Mean paired difference (×``scale``) with its standard error (the spread of the mean, not of photos)."""
    se = delta.std(ddof=1) / np.sqrt(delta.size) if delta.size > 1 else 0.0
    return f"{scale * delta.mean():+.{digits}f} ± {scale * se:.{digits}f}"


def paired_against_decam(rows: Sequence[Row], method: str, column: Column) -> tuple[np.ndarray, int]:
    """decam − ``method`` on ``column`` over the (image, class) pairs both scored, and on how many decam
    is better (higher, or lower for a lower-is-better column)."""
    decam = {(r.image, r.target): value(r, column.key) for r in rows if r.method == "decam"}
    pairs = [(decam[r.image, r.target], value(r, column.key)) for r in rows
             if r.method == method and (r.image, r.target) in decam]
    delta = np.array([a - b for a, b in pairs if np.isfinite(a) and np.isfinite(b)])
    wins = int((delta > 0).sum() if column.higher_is_better else (delta < 0).sum())
    return delta, wins


def rank_groups(rows: Sequence[Row]) -> list[tuple[str | None, list[Row]]]:
    """``[(None, rows)]`` when every row is of an image's first class; else the rank-1 rows (the searched
    class) and the rows of ranks 2 and up (the other classes), each with its heading."""
    ranks = sorted({r.rank for r in rows})
    if ranks in ([], [1]):
        return [(None, list(rows))]
    top = ranks[-1]
    return [("Searched class (rank 1)", [r for r in rows if r.rank == 1]),
            (f"Other classes (ranks 2–{top})" if top > 2 else "Other class (rank 2)", [r for r in rows if r.rank > 1])]


def summary_table(rows: list[Row], methods: list[str], columns: Sequence[Column] = (),
                  unit: str = "images") -> list[dict[str, str]]:
    """Per method: images (``unit``), DiffAUC mean ± std and median, insertion, deletion (×100), each of
    ``columns`` (mean ± sample std), seconds, queries, and — when ``decam`` is among the methods — on how
    many images decam's DiffAUC is higher and by how much on average (paired over the same image and class)."""
    by = {m: [r for r in rows if r.method == m] for m in methods}
    has_decam = bool(by.get("decam"))
    table = []
    for m in methods:
        rs = by[m]
        if not rs:
            continue
        diff = np.array([r.diff for r in rs])
        entry = {
            "method": m,
            unit: str(len(rs)),
            "DiffAUC": _mean_std(diff),
            "DiffAUC median": f"{100 * np.median(diff):.1f}",
            "insertion": _mean_std(np.array([r.insertion for r in rs])),
            "deletion": _mean_std(np.array([r.deletion for r in rs])),
        }
        for c in columns:
            entry[c.label] = _mean_std(np.array([value(r, c.key) for r in rs]), c.scale, c.digits)
        entry[f"s / {unit[:-1]}"] = f"{np.mean([r.seconds for r in rs]):.2f}"
        entry[f"queries / {unit[:-1]}"] = f"{np.mean([r.queries for r in rs]):.0f}"
        if has_decam:
            delta, wins = paired_against_decam(rows, m, CURVE_COLUMNS[0])
            entry["decam better"] = "—" if m == "decam" else f"{wins}/{delta.size}"
            entry["decam − method (s.e.)"] = "—" if m == "decam" else _paired(delta)
        table.append(entry)
    return table


def paired_table(rows: list[Row], methods: list[str], columns: Sequence[Column] = ()) -> list[dict[str, str]]:
    """One line per method other than decam: for DiffAUC, insertion, deletion and each of ``columns``, the
    mean paired difference decam − method (s.e.) and on how many images decam is better in that metric's
    direction (↑ higher is better, ↓ lower is better)."""
    if not any(r.method == "decam" for r in rows):
        return []
    table = []
    for m in methods:
        if m == "decam" or not any(r.method == m for r in rows):
            continue
        entry = {"method": m}
        for c in (*CURVE_COLUMNS, *columns):
            delta, wins = paired_against_decam(rows, m, c)
            label = f"{c.label} {'↑' if c.higher_is_better else '↓'}"
            entry[label] = f"{_paired(delta, c.scale, c.digits)} ({wins}/{delta.size})" if delta.size else "—"
        table.append(entry)
    return table


def markdown_table(table: list[dict[str, str]]) -> str:
    if not table:
        return "(no images evaluated)\n"
    head = list(table[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(entry[h] for h in head) + " |" for entry in table]
    return "\n".join(lines) + "\n"


DEFAULT_SUBSTRATES = ("Deletion to the normalization's mean colour (0 in the normalized input), insertion from "
                      "the reference blur (RISE's gkern(11, 5) on the normalized input, zero padding); H·W/224 "
                      "pixels per step; softmax probability of the target class.")


def summary_markdown(rows: list[Row], methods: list[str], model_name: str, failures: list[ImageResult], *,
                     columns: Sequence[Column] = (), substrates: str | None = None) -> str:
    """``summary.md``: the substrates and metrics in words (``substrates``, from
    :meth:`~decam.evaluation.metrics.suite.MetricSuite.describe`), the per-method table and the paired
    table against decam — once, or per :func:`rank_groups` when images have several classes."""
    n_images = len({r.image for r in rows})
    groups = rank_groups(rows)
    n_classes = max((r.rank for r in rows), default=1)
    out = [
        f"# Metric suite on {n_images} images" + (f", {n_classes} classes each" if n_classes > 1 else "")
        + f", model {model_name}\n",
        "AUCs and ROAD ×100 (mean ± sample std over images), correlations as they are; DiffAUC = insertion − "
        "deletion, higher is better. " + (substrates or DEFAULT_SUBSTRATES) + "\n",
    ]
    if n_classes > 1:
        out.append("Each image is explained for several classes: rank 1 is the first, the class decam's search "
                   "is scored on; decam finds every class's map with that ONE search, whose seconds and queries "
                   "are counted on the rank-1 rows (0 on the others), while every other method runs once per "
                   "class. Differences are paired over the same image and class.\n")
    for heading, group in groups:
        unit = "images" if heading is None or group[0].rank == 1 else "maps"
        if heading is not None:
            out.append(f"## {heading}\n")
        out.append(markdown_table(summary_table(group, methods, columns, unit)))
        paired = paired_table(group, methods, columns)
        if paired:
            title = "decam − method, paired over the same images (s.e.), and images where decam is better"
            out += [f"\n{'###' if heading else '##'} {title}\n",
                    "↑: higher is better, ↓: lower is better; \"better\" follows each metric's direction. A claim "
                    "of \"better\" holds only on metrics the method does not optimize.\n",
                    markdown_table(paired)]
    if failures:
        out.append(f"\n## Skipped images ({len(failures)})\n")
        out += [f"- {r.error}" for r in failures]
        out.append("")
    return "\n".join(out)
