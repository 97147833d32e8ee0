"""Paired DiffAUC comparison of decam configurations and baselines on labelled photos.

Usage:
  python experiments/quality_probe.py --images 40 --device cuda --out probe.json \\
      "paper:aggregator=paper" "evaluated:aggregator=evaluated,budget=2000" \\
      "rise4000@rise:n_masks=4000" "gradcam@gradcam:"

A variant ``NAME:key=value,...`` is decam with those config overrides; ``NAME@METHOD:key=value,...``
is a registered baseline method (``decam list``) with those parameters. Every variant is scored on
the same photos (an even spread of ``labels.csv``, target = the labelled class) with the RISE
protocol (decam.evaluation.metrics, ×100). Prints mean ± std, median, queries and seconds per photo, and the
paired difference of each variant against ``--reference`` (default: the first) with its standard
error and the number of photos it wins.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import numpy as np


def load_photos(folder: Path, n: int) -> list[tuple[Path, int]]:
    with open(folder / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    idx = np.linspace(0, len(rows) - 1, num=min(n, len(rows))).round().astype(int)
    return [(folder / rows[i]["file"], int(rows[i]["class_index"])) for i in idx]


def parse(spec: str) -> tuple[str, str | None, list[str]]:
    head, _, params = spec.partition(":")
    name, _, method = head.partition("@")
    return name, method or None, [p for p in params.split(",") if p]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--photos", default="../shared/data/imagenet-dev")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--metric-precision", default="fp32")
    parser.add_argument("--metric-steps", type=int, default=224, help="fewer steps: a cheaper, coarser AUC")
    parser.add_argument("--reference", default=None)
    parser.add_argument("--out", default=None, help="write per-photo scores as JSON")
    args = parser.parse_args()

    from omegaconf import OmegaConf

    from decam.evaluation.methods import create_method
    from decam.config import load_config
    from decam.search.explainer import Explainer
    from decam.evaluation.metrics import insertion_deletion
    from decam.models import FastForward, ModelRunner

    photos = load_photos(Path(args.photos), args.images)
    base = Explainer(config=load_config(None, [f"device={args.device}"]))
    images = [base.prepare(p) for p, _ in photos]
    metric = ModelRunner(FastForward(base.model, args.device, args.metric_precision), 64)
    scores: dict[str, list[float]] = {}
    rows = []
    for spec in args.variants:
        name, method, params = parse(spec)
        if method is None:
            explainer = Explainer(base.model, load_config(None, [f"device={args.device}", *params]))
            run = lambda x, t: (lambda e: (e.saliency, e.queries))(explainer.explain(x, t))  # noqa: E731
        else:
            kw = {k: OmegaConf.from_dotlist([p])[k] for p in params for k in [p.split("=")[0]]}
            m = create_method(method, base.model, ModelRunner(base.forward, 64), **kw)
            run = lambda x, t, m=m: (m(x, t), m.queries)  # noqa: E731
        seconds, queries = [], 0
        for (path, target), x in zip(photos, images):
            start = time.perf_counter()
            sal, queries = run(x, target)
            seconds.append(time.perf_counter() - start)
            s = insertion_deletion(metric, x, sal, target, n_steps=args.metric_steps)
            scores.setdefault(name, []).append(100 * s.diff)
            rows.append({"variant": name, "image": path.name, "diffauc": 100 * s.diff, "insertion": 100 * s.insertion,
                         "deletion": 100 * s.deletion, "queries": queries, "seconds": seconds[-1]})
        v = scores[name]
        print(f"{name:<22} DiffAUC {statistics.mean(v):6.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:5.2f} "
              f"(median {statistics.median(v):6.2f})  queries {queries:>5}  {statistics.mean(seconds):6.2f} s/photo",
              flush=True)
    ref = args.reference or next(iter(scores))
    for name, v in scores.items():
        if name != ref:
            d = np.array(v) - np.array(scores[ref])
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            print(f"{name} − {ref}: {d.mean():+.2f} ± {se:.2f} (s.e.), wins {int((d > 0).sum())}/{len(d)}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
