"""Quick DiffAUC comparison of decam configurations on a few labelled photos (paired, same images).

Usage:
  python experiments/quality_probe.py --images 10 \\
      "paper:aggregator=paper" "evaluated:aggregator=evaluated" "prob:aggregator=evaluated,objective=probability"

Each positional argument is ``NAME:key=value,key=value`` (config overrides). Prints per-variant
mean ± std and median DiffAUC ×100 (RISE protocol, decam.metrics), queries and seconds, plus the
paired difference of every variant against the first one. ``--rise N`` adds RISE with N masks.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np


def load_photos(folder: Path, n: int) -> list[tuple[Path, int]]:
    rows = list(csv.DictReader(open(folder / "labels.csv")))
    stride = max(1, len(rows) // n)
    return [(folder / r["file"], int(r["class_index"])) for r in rows[::stride][:n]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--photos", default="../shared/data/imagenet-dev")
    parser.add_argument("--rise", type=int, default=0, help="also score RISE with this many masks")
    parser.add_argument("--metric-precision", default="bf16")
    args = parser.parse_args()

    from decam.config import load_config
    from decam.explain import Explainer
    from decam.metrics import insertion_deletion

    photos = load_photos(Path(args.photos), args.images)
    results: dict[str, list[float]] = {}
    costs: dict[str, list[tuple[int, float]]] = {}
    for spec in args.variants:
        name, _, overrides = spec.partition(":")
        cfg = load_config(None, [o for o in overrides.split(",") if o])
        explainer = Explainer(config=cfg)
        for path, target in photos:
            exp = explainer.explain(path, target)
            s = insertion_deletion(explainer.model.forward, exp.image, exp.saliency, target,
                                   precision=args.metric_precision)
            results.setdefault(name, []).append(100 * s.diff)
            costs.setdefault(name, []).append((exp.queries, exp.seconds))
        print(f"{name:<24} DiffAUC {statistics.mean(results[name]):6.2f} ± {statistics.stdev(results[name]):5.2f} "
              f"(median {statistics.median(results[name]):6.2f})  queries {costs[name][0][0]}  "
              f"{statistics.mean(c[1] for c in costs[name]):.1f} s/photo", flush=True)
    if args.rise:
        from decam.baselines import METHODS  # noqa: F401  (registered explanation methods)

        rise = METHODS["rise"](n_masks=args.rise) if "n_masks" in str(METHODS["rise"].__init__.__code__.co_varnames) else METHODS["rise"]()
        name = f"rise-{args.rise}"
        for path, target in photos:
            x = explainer.prepare(path)
            t = time.perf_counter()
            sal = rise(explainer.model, x, target)
            s = insertion_deletion(explainer.model.forward, x.cpu(), np.asarray(sal), target,
                                   precision=args.metric_precision)
            results.setdefault(name, []).append(100 * s.diff)
            costs.setdefault(name, []).append((args.rise, time.perf_counter() - t))
        print(f"{name:<24} DiffAUC {statistics.mean(results[name]):6.2f} ± {statistics.stdev(results[name]):5.2f} "
              f"(median {statistics.median(results[name]):6.2f})")
    first = next(iter(results))
    for name, scores in results.items():
        if name == first:
            continue
        d = np.array(scores) - np.array(results[first])
        print(f"{name} − {first}: {d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(len(d)):.2f} (s.e.), "
              f"wins {int((d > 0).sum())}/{len(d)}")


if __name__ == "__main__":
    main()
