"""A study's results: per-configuration means, the Markdown table, CSVs and charts, logged to the parent run."""

from __future__ import annotations

import csv
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from decam.errors import DecamError
from decam.io import atomic_open
from decam.tracking import Tracker
from decam.workflows.study import Child, Study, _file_key, base_params

SCORES = ("insertion", "deletion", "diffauc", "queries", "seconds")
KEY_TAG, STUDY_TAG, STUDY_KEY_TAG = "decam.key", "decam.study", "decam.study_key"


@dataclass
class StudyResult:
    parent: str
    rows: list[dict]
    """One per finished child: swept values, ``image``, the SCORES and ``run_id``."""
    summary: list[dict]
    """One per configuration: swept values, ``images`` and mean/std of the scores."""
    ran: int = 0
    skipped: int = 0
    failures: list[tuple[str, DecamError]] = field(default_factory=list)


def collect_rows(tracker: Tracker, parent: str, children: list[Child]) -> list[dict]:
    """The finished children of ``parent`` that belong to this plan, read back from the store."""
    by_key = {c.key: c for c in children}
    rows = []
    for run in tracker.children(parent):
        child = by_key.get(run.data.tags.get(KEY_TAG))
        if child is None or run.info.status != "FINISHED":
            continue
        m = run.data.metrics
        rows.append({**child.point, "image": child.image_id, **{k: m.get(k, math.nan) for k in SCORES},
                     "run_id": run.info.run_id, "_order": children.index(child)})
    rows.sort(key=lambda r: r.pop("_order"))
    return rows


def summarize(rows: list[dict], keys: list[str]) -> list[dict]:
    """Per configuration (in plan order): number of images and mean (and DiffAUC std) of the scores."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(json.dumps([row[k] for k in keys], default=str), []).append(row)
    out = []
    for members in groups.values():
        entry = {k: members[0][k] for k in keys}
        entry["images"] = len(members)
        for score in SCORES:
            entry[score] = float(np.mean([r[score] for r in members]))
        entry["diffauc_std"] = float(np.std([r["diffauc"] for r in members]))
        out.append(entry)
    return out


def summary_markdown(summary: list[dict], keys: list[str]) -> str:
    """The summary as a Markdown table; AUCs ×100 like the paper, best DiffAUC in bold."""
    head = [*keys, "images", "insertion", "deletion", "DiffAUC", "queries", "seconds"]
    best = max((s["diffauc"] for s in summary), default=None)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        diff = f"{100 * s['diffauc']:.1f} ± {100 * s['diffauc_std']:.1f}"
        cells = [*(str(s[k]) for k in keys), str(s["images"]), f"{100 * s['insertion']:.1f}",
                 f"{100 * s['deletion']:.1f}", f"**{diff}**" if s["diffauc"] == best else diff,
                 f"{s['queries']:.0f}", f"{s['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(folder: Path, study: Study, result: StudyResult) -> None:
    """summary.csv (AUCs in [0, 1]), summary.md, runs.csv, DiffAUC per swept key and grid heat maps."""
    from decam.tracking.charts import heatmap, value_plot

    folder.mkdir(parents=True, exist_ok=True)
    for name, table in (("summary.csv", result.summary), ("runs.csv", result.rows)):
        with atomic_open(folder / name, "w") as f:
            if table:
                writer = csv.DictWriter(f, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
    with atomic_open(folder / "summary.md", "w") as f:
        f.write(f"## {study.name}\n\n{len(study.images)} images; AUCs × 100 (mean over images, DiffAUC ± std)\n\n")
        f.write(summary_markdown(result.summary, study.keys))
    if not result.rows:
        return
    diff = [r["diffauc"] for r in result.rows]
    for key in study.keys:
        value_plot(folder / f"diffauc_vs_{_file_key(key)}.png", key, [r[key] for r in result.rows], diff)
    if study.grid:
        for a, b in itertools.combinations(study.keys, 2):
            heatmap(folder / f"heatmap_{_file_key(a)}_{_file_key(b)}.png", (a, b), result.rows)


def log_summary(tracker: Tracker, parent: str, study: Study, result: StudyResult, out_dir: str | Path | None) -> None:
    """Write the summary files (under ``out_dir/summary`` when given) and log them to the parent run."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="decam-study-") as tmp:
        folder = Path(out_dir) / "summary" if out_dir else Path(tmp)
        write_summary(folder, study, result)
        with atomic_open(folder / "study.yaml", "w") as f:
            base = [f"{k}={v}" for k, v in base_params(study.base).items()]
            yaml.safe_dump({"name": study.name, "images": [p.name for p in study.images], "base": base,
                            "keys": study.keys, "points": study.points, "target": study.target,
                            "n_steps": study.n_steps}, f, sort_keys=False)
        tracker.log_artifacts(parent, folder, "summary")
    best = max((s["diffauc"] for s in result.summary), default=None)
    tracker.log_metrics(parent, [("best_diffauc", best, 0)] if best is not None else [])
    tracker.log_tags(parent, {"decam.children": len(result.rows), "decam.images": len(study.images)})
