"""Two objects in one photo: does each class's map land on its own object?

Each test image is built at run time from two report-half dev photos of different classes: each
photo is resized and centre-cropped to half the model input and placed side by side (left A,
right B) on a mid-grey canvas; the targets are the two photos' labels. For every method we report
the pointing game (the map's peak lies in the class's own half) and the share of the map's mass on
the class's own half, over both classes of every pair.

decam explains both classes with ONE search (``target=[a, b]``), with the fitness rewarding the
first class (``reward=first``) or the mean of both (``reward=mean``); RISE and Sobol (any method
with a ``budget`` knob) run once per class at the same budget each (twice the queries); Grad-CAM is
the white-box reference.

Usage: python experiments/two_objects.py [--pairs 20] [--budget 1633]
           [--methods decam-first,decam-mean,rise,sobol,gradcam] [--out rows.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_photos import DEFAULT_FOLDER, labels, split  # noqa: E402


def composite(a, b, size: int) -> torch.Tensor:
    """``(3, size, size)``: photo ``a`` left, ``b`` right, each a centre crop resized to size/2."""
    from decam.io.images import to_input

    half = size // 2
    canvas = torch.full((3, size, size), 0.5)
    top = (size - half) // 2
    canvas[:, top:top + half, :half] = to_input(a, (half, half), half)
    canvas[:, top:top + half, half:2 * half] = to_input(b, (half, half), half)
    return canvas


def scores(sal: np.ndarray, side: int) -> tuple[bool, float]:
    """(peak in the class's half, share of the map's mass there); ``side`` 0 = left, 1 = right."""
    sal = np.clip(np.asarray(sal, dtype=np.float64), 0, None)
    w = sal.shape[1] // 2
    peak_col = int(np.unravel_index(sal.argmax(), sal.shape)[1])
    own = sal[:, :w] if side == 0 else sal[:, w:]
    return (peak_col < w) == (side == 0), float(own.sum() / sal.sum()) if sal.sum() > 0 else 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=str(DEFAULT_FOLDER), help="the dev photos (default: shared/data/imagenet-dev)")
    parser.add_argument("--pairs", type=int, default=20, help="two-photo composites (default 20)")
    parser.add_argument("--budget", type=int, default=1633, help="model queries per search or per class (default 1633)")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--methods", default="decam-first,decam-mean,rise,sobol,gradcam",
                        help="decam-first, decam-mean (one search for both classes) and evaluation methods")
    parser.add_argument("--out", default=None, help="write per-pair rows as JSON")
    args = parser.parse_args()

    from inspect import signature

    from decam.config import load_config
    from decam.evaluation.methods import METHODS, create_method
    from decam.io.images import open_image
    from decam.models import ModelRunner
    from decam.search.explainer import Explainer

    _, report = split(args.photos)
    label = labels(args.photos)
    half = len(report) // 2
    pairs = [(report[i], report[i + half]) for i in range(min(args.pairs, half))]
    base = Explainer(config=load_config(None, [{"model": args.model, "budget": args.budget}]))
    size = base.model.input_size[0]
    methods = [m for m in args.methods.split(",") if m]
    explainers = {m: Explainer(base.model, load_config(None, [{"model": args.model, "budget": args.budget,
                                                               "reward": m.split("-")[1]}]))
                  for m in methods if m.startswith("decam")}
    runner = ModelRunner(base.forward, 64)
    others = {m: create_method(m, base.model, runner,
                               **({"budget": args.budget} if "budget" in signature(METHODS[m]).parameters else {}))
              for m in methods if not m.startswith("decam")}
    rows = []
    for a, b in pairs:
        x = composite(open_image(a), open_image(b), size)
        targets = [label[a.name], label[b.name]]
        for m in methods:
            start = time.perf_counter()
            if m in explainers:
                exp = explainers[m].explain(x, targets)
                maps, queries = [t.saliency for t in exp.targets], exp.queries
            else:
                maps = others[m].maps_for(x, targets)  # one run per class; queries: of both
                queries = others[m].queries
            seconds = time.perf_counter() - start
            for side, (t, sal) in enumerate(zip(targets, maps)):
                hit, share = scores(sal, side)
                rows.append({"pair": f"{a.stem}|{b.stem}", "method": m, "target": t, "side": side, "hit": hit,
                             "share": share, "queries": queries, "seconds": seconds})
        print(f"{a.stem} | {b.stem}: " + ", ".join(
            f"{m} {sum(r['hit'] for r in rows[-2 * len(methods):] if r['method'] == m)}/2" for m in methods),
            flush=True)
    print(f"\n{len(pairs)} pairs, {args.model}, budget {args.budget} per search\n")
    print("| method | pointing game | mass on own half | queries / pair |")
    print("|---|---|---|---|")
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        hits = sum(r["hit"] for r in rs)
        share = np.array([r["share"] for r in rs])
        print(f"| {m} | {hits}/{len(rs)} ({100 * hits / len(rs):.0f} %) | {100 * share.mean():.1f} % "
              f"± {100 * share.std(ddof=1) / np.sqrt(len(rs)):.1f} | {rs[0]['queries']} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
