"""Paired study of decam config variants (a fill, a converge tolerance, …) on one half of the dev photos.

Each variant is a set of ``key=value`` overrides; each runs ``decam evaluate --methods decam`` on the same
photos into its own folder (skipped when its ``results.csv`` is complete, so a rerun resumes), and the table
pairs every variant with the first one on every metric of the suite and on queries — a change that helps
only under one metric's substrate shows here.

    python experiments/variants.py --half tune --photos 14 blur=fill=blur mix=fill=mix mean=fill=mean
    python experiments/variants.py --half tune --photos 14 full= c95=converge=0.95 c98=converge=0.98

A variant is ``NAME=`` (the default config) or ``NAME=key=value[,key=value]``.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_photos import DEFAULT_FOLDER, split, spread  # noqa: E402

METRICS = (("diff", "DiffAUC", True, 100), ("diff_swapped", "DiffAUC swapped", True, 100),
           ("mufidelity", "MuFidelity", True, 100), ("road", "ROAD", True, 100),
           ("queries", "queries", False, 1), ("seconds", "seconds", False, 1))


def rows(folder: Path) -> dict[str, dict]:
    if not (folder / "results.csv").exists():
        return {}
    with open(folder / "results.csv", newline="") as f:
        return {r["stem"]: r for r in csv.DictReader(f) if r["method"] == "decam"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", metavar="NAME=[key=value,...]")
    parser.add_argument("--half", choices=("tune", "report"), default="tune")
    parser.add_argument("--photos", type=int, default=14)
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER))
    parser.add_argument("--out", default="variants-out")
    parser.add_argument("--report", action="store_true", help="only print the table of what is in --out")
    args = parser.parse_args()
    photos = spread(split(args.folder)[0 if args.half == "tune" else 1], args.photos)
    variants = [v.partition("=")[::2] for v in args.variants]
    for name, overrides in variants:
        folder = Path(args.out) / args.half / name
        if args.report or len(rows(folder)) >= len(photos):
            continue
        cmd = [sys.executable, "-m", "decam", "evaluate", *map(str, photos), "--methods", "decam", "--out",
               str(folder), "--quiet", "--gallery", "0", *[o for o in overrides.split(",") if o]]
        print(f"{name}: {' '.join(cmd[3:3 + 1])} … {overrides or '(default)'}", flush=True)
        subprocess.run(cmd, check=False)
    base_name = variants[0][0]
    base = rows(Path(args.out) / args.half / base_name)
    print(f"\n{args.half} half, {len(base)} photos; each variant − {base_name}, paired (mean ± s.e.; "
          "`*` beyond 2 s.e.; AUCs and ROAD ×100)\n")
    print("| variant | " + " | ".join(label for _, label, _, _ in METRICS) + " |")
    print("|---" * (len(METRICS) + 1) + "|")
    for name, overrides in variants:
        got = rows(Path(args.out) / args.half / name)
        cells = []
        for key, _, _, scale in METRICS:
            stems = [s for s in base if s in got]
            a = np.array([float(got[s][key]) for s in stems]) * scale
            b = np.array([float(base[s][key]) for s in stems]) * scale
            if name == base_name:
                cells.append(f"{a.mean():.1f}" if a.size else "—")
                continue
            d = a - b
            se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
            star = "*" if np.isfinite(se) and abs(d.mean()) > 2 * se else ""
            cells.append(f"{d.mean():+.1f} ± {se:.1f}{star}" if d.size else "—")
        print(f"| {name} ({overrides or 'default'}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
