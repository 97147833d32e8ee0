"""The quality suite: decam against every anchor at equal query budgets, on the report half of the dev photos.

One ``decam evaluate`` per (model, budget, photo) into its own folder, so the suite is **resumable** (a photo
whose ``results.csv`` exists is skipped) and **shardable** (``--shard 2/4`` takes every fourth photo from the
second; shards may run on other machines and be copied together). ``--report`` only reads what is there
and writes the tables: method × metric mean ± s.e. per model and budget, decam − method paired over the same
photos (mean ± s.e.; ``*`` where it is more than 2 s.e. from 0), decam's wins, seconds per photo.

    python experiments/suite.py                                   # efficientnet_lite0, budget 1633, report half
    python experiments/suite.py --budgets 500,4000 --photos 30    # the other budgets on 30 photos
    python experiments/suite.py --models efficientnet_lite1,efficientnet_lite2 --photos 30
    python experiments/suite.py --report > docs/results-tables.md

Targets are the top-1 class of the clean photo (the RISE protocol). Substrates are ``decam evaluate``'s
defaults: the RISE reference (deletion to 0 in the normalized input, insertion from the reference blur).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_photos import DEFAULT_FOLDER, split, spread  # noqa: E402

METHODS = ("decam,rise,riseblur=rise,sobol,hsic,shap,kernelshap,lime,occlusion,gradcam,fullgrad,ig,random")
OPTIONS = ("riseblur.fill=blur",)
# (key, label, higher is better); ×100 in the tables
METRICS = (("diff", "DiffAUC", True), ("diff_swapped", "DiffAUC swapped", True), ("mufidelity", "MuFidelity", True),
           ("road", "ROAD", True), ("insertion", "insertion", True), ("deletion", "deletion", False))


def run(args: argparse.Namespace) -> None:
    photos = spread(split(args.folder)[1], args.photos)
    index, count = (int(v) for v in args.shard.split("/"))
    mine = photos[index - 1::count]
    for model in args.models.split(","):
        for budget in args.budgets.split(","):
            for i, photo in enumerate(mine, 1):
                folder = Path(args.out) / model / budget / photo.stem
                if (folder / "results.csv").exists():
                    continue
                start = time.perf_counter()
                cmd = [sys.executable, "-m", "decam", "evaluate", str(photo), "--methods", args.methods,
                       *OPTIONS, f"model={model}", "--budget", budget, "--out", str(folder), "--quiet",
                       "--gallery", "0", *args.extra]
                done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                status = "ok" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
                print(f"[{model} {budget} {i}/{len(mine)}] {photo.name}: {status} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)


def read(out: Path) -> dict[tuple[str, str], list[dict]]:
    """(model, budget) → every row of every photo's ``results.csv``."""
    tables: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(out.glob("*/*/*/results.csv")):
        model, budget = path.parts[-4], path.parts[-3]
        with open(path, newline="") as f:
            tables.setdefault((model, budget), []).extend(csv.DictReader(f))
    return tables


def _num(row: dict, key: str) -> float:
    try:
        return float(row.get(key) or "nan")
    except ValueError:
        return float("nan")


def _se(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def report(rows: list[dict], title: str) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {(r["method"], r["stem"]): r for r in rows}
    photos = sorted({r["stem"] for r in rows if r["method"] == "decam"})
    lines = [f"### {title} — {len(photos)} photos", "",
             "| method | " + " | ".join(label for _, label, _ in METRICS) + " | s / photo (median) | queries |",
             "|---" * (len(METRICS) + 3) + "|"]
    for m in methods:
        cells = []
        for key, _, _ in METRICS:
            v = np.array([_num(by[m, p], key) for p in photos if (m, p) in by])
            v = v[np.isfinite(v)]
            cells.append(f"{100 * v.mean():.1f} ± {100 * _se(v):.1f}" if v.size else "—")
        sec = np.array([_num(by[m, p], "seconds") for p in photos if (m, p) in by])
        q = np.array([_num(by[m, p], "queries") for p in photos if (m, p) in by])
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {np.nanmedian(sec):.1f} | {np.nanmean(q):.0f} |")
    lines += ["", "decam − method, paired over the same photos (×100, mean ± s.e.; `*`: beyond 2 s.e.); "
              "wins: photos where decam is better.", "",
              "| method | " + " | ".join(f"{label} (wins)" for _, label, _ in METRICS) + " |",
              "|---" * (len(METRICS) + 1) + "|"]
    for m in methods:
        if m == "decam":
            continue
        cells = []
        for key, _, higher in METRICS:
            pairs = np.array([(_num(by["decam", p], key), _num(by[m, p], key)) for p in photos if (m, p) in by])
            d = pairs[:, 0] - pairs[:, 1] if pairs.size else np.array([])
            d = d[np.isfinite(d)]
            if not d.size:
                cells.append("—")
                continue
            se, wins = _se(d), int((d > 0).sum() if higher else (d < 0).sum())
            star = "*" if np.isfinite(se) and abs(d.mean()) > 2 * se else ""
            cells.append(f"{100 * d.mean():+.1f} ± {100 * se:.1f}{star} ({wins}/{d.size})")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="efficientnet_lite0")
    parser.add_argument("--budgets", default="1633")
    parser.add_argument("--photos", type=int, default=None, help="photos of the report half, evenly spread (all)")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--shard", default="1/1", metavar="I/N")
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER), help="the dev photos")
    parser.add_argument("--out", default="suite-out", help="one folder per model/budget/photo")
    parser.add_argument("--report", action="store_true", help="only print the tables of what is in --out")
    parser.add_argument("extra", nargs="*", help="more decam evaluate arguments (key=value)")
    args = parser.parse_args()
    if not args.report:
        run(args)
    tables = read(Path(args.out))
    for (model, budget), rows in sorted(tables.items()):
        print(report(rows, f"{model}, budget {budget}"))


if __name__ == "__main__":
    main()
