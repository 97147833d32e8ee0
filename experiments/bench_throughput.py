"""Throughput benchmark: decam's model queries/s during a real search vs the model alone.

All figures come from one run of this script on one machine, so they can be compared as ratios:

(a) raw batched forward of the model alone, same batch size, precision and layout as decam, with
    BatchNorm folded into the convolutions as decam's search does (also printed: without folding);
(b) decam's queries/s during a search, with per-stage times (render, compose, forward, searcher);
(c) the naive baseline: fp32, NCHW, default glibc malloc (measured in a subprocess, because the
    allocator setting is process-wide).
The machine may be shared with other work, so (a) and (b) are measured in alternating rounds and
each keeps its best round (``--rounds``); the naive baseline keeps its best of as many runs.

Usage: python experiments/bench_throughput.py [--model efficientnet_lite0] [--generations 30]
       [--popsize 64] [--device cpu|cuda] [--precision auto] [--quality-images 0]
``--quality-images N`` also explains N photos with fp32 and bf16 (same seeds), and with fp32 and
another seed, and prints their DiffAUC (RISE protocol, fp32 metric): bf16 must not change map
quality by more than a change of seed does.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch


def raw_throughput(model_name: str, batch: int, precision: str, channels_last: bool, device: str,
                   weights: str | None, reps: int = 5, fold: bool = False, compile: bool = False) -> float:
    """Images/s of the model alone on a fixed random batch (``fold``, ``compile``: as decam's search runs it)."""
    from decam.search.explainer import _cached_model
    from decam.models.folding import fold_batchnorm

    loaded = _cached_model(model_name, weights)
    module = loaded.module.to(device)
    if fold:
        module = fold_batchnorm(module)
    x = torch.rand(batch, 3, *loaded.input_size, device=device)
    if channels_last:
        module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if compile:
        module = _compiled(module)
    ctx = torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16" else torch.autocast(device, enabled=False)
    with torch.inference_mode(), ctx:
        module(x)
        module(x)
        _sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            module(x)
        _sync(device)
    return reps * batch / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def naive_in_subprocess(args: argparse.Namespace, batch: int) -> float:
    """fp32 NCHW throughput with the default allocator, in a fresh process."""
    env = dict(os.environ, DECAM_NO_MALLOPT="1")
    code = (
        "import sys, json; sys.path.insert(0, %r); from bench_throughput import raw_throughput; "
        "print(json.dumps(raw_throughput(%r, %d, 'fp32', False, %r, %r, reps=3)))"
        % (str(Path(__file__).parent), args.model, batch, args.device, args.weights)
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def decam_search(args: argparse.Namespace, precision: str, image=None, seed: int = 0):
    """One search with the benchmark's settings; the explainer is built once per precision and
    reused, as a run over many images reuses it (its first search also pays one-off warm-up)."""
    from decam.io.images import default_image

    explainer = _explainer(args.generations, args.popsize, precision, args.device, args.model, args.weights,
                           args.compile)
    with _seed(explainer, seed):
        return explainer, explainer.explain(image if image is not None else default_image()[1])


@functools.lru_cache(maxsize=2)
def _compiled(module):
    from decam.models.compiling import CompiledForward

    return CompiledForward(module)


@functools.lru_cache(maxsize=4)
def _explainer(generations: int, popsize: int, precision: str, device: str, model: str, weights: str | None,
               compile: bool = False):
    from decam.config import load_config
    from decam.search.explainer import Explainer

    overrides = [f"generations={generations}", f"searcher.popsize={popsize}", f"precision={precision}",
                 f"device={device}", f"batch_size={popsize}", f"model={model}", f"compile={compile}"]
    if weights:
        overrides.append(f"weights={weights}")
    return Explainer(config=load_config(None, overrides))


@contextlib.contextmanager
def _seed(explainer, seed: int):
    old = explainer.config.seed
    explainer.config.seed = seed
    try:
        yield
    finally:
        explainer.config.seed = old


def quality(args: argparse.Namespace) -> list[tuple[str, float, float, float]]:
    """DiffAUC of fp32 vs bf16 maps on the same photos and seeds, and of fp32 with another seed: a
    search is chaotic (a last-bit difference changes its path), so the seed-to-seed spread is the
    yardstick for per-photo differences."""
    from decam.evaluation.metrics import insertion_deletion

    folder = Path(args.photos)
    photos = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".jpeg", ".jpg", ".png"})[: args.quality_images]
    rows = []
    for i, photo in enumerate(photos):
        scores = []
        for precision, seed in (("fp32", i), ("bf16", i), ("fp32", i + 1000)):
            explainer, exp = decam_search(args, precision, photo, seed=seed)
            s = insertion_deletion(explainer.model.forward, exp.image.to(args.device), exp.saliency, exp.target)
            scores.append(100 * s.diff)
        rows.append((photo.name, *scores))
    return rows


def _mean_se(values: list[float]) -> str:
    n = len(values)
    mean = sum(values) / n
    se = (sum((v - mean) ** 2 for v in values) / (n - 1) / n) ** 0.5 if n > 1 else 0.0
    return f"{mean:+.2f} ± {se:.2f} (s.e.)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--weights", default=None, help="e.g. random, for timing models without local weights")
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--compile", action="store_true", help="decam's compile=true: (a) and (b) torch.compile'd")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds; the best of each is kept")
    parser.add_argument("--quality-images", type=int, default=0)
    parser.add_argument("--photos", default="../shared/data/imagenet-dev")
    args = parser.parse_args()

    from decam.models import resolve_precision, tune_allocator

    naive = None if args.skip_naive else max(naive_in_subprocess(args, args.popsize) for _ in range(args.rounds))
    print(f"allocator tuned: {tune_allocator()}   torch {torch.__version__}   threads {torch.get_num_threads()}")
    precision = resolve_precision(args.precision, torch.device(args.device))
    # the machine may be shared: alternate the measurements and keep each one's best round
    rounds = []
    for _ in range(args.rounds):
        reps = args.generations + 1  # as many batches as the search runs, so both last as long
        unfolded = raw_throughput(args.model, args.popsize, precision, True, args.device, args.weights, reps)
        folded = raw_throughput(args.model, args.popsize, precision, True, args.device, args.weights, reps, fold=True)
        raw = folded if not args.compile else raw_throughput(
            args.model, args.popsize, precision, True, args.device, args.weights, reps, fold=True, compile=True)
        _, exp = decam_search(args, precision)
        search_s = sum(exp.timings.values())
        rounds.append((unfolded, folded, raw, (exp.queries - 1) / search_s, exp, search_s))
        print(f"  round: raw {unfolded:.1f} img/s, folded {folded:.1f}"
              + (f", folded and compiled {raw:.1f}" if args.compile else "") + f", decam {rounds[-1][3]:.1f} queries/s")
    unfolded, folded, raw = (max(r[i] for r in rounds) for i in range(3))
    _, _, _, qps, exp, search_s = max(rounds, key=lambda r: r[3])
    print(f"model {args.model}, device {args.device}, batch {args.popsize}, precision {precision}, channels_last; "
          f"best of {args.rounds} rounds")
    x_naive = (lambda v: f"   ({v / naive:.1f}x naive)") if naive else (lambda v: "")
    if naive is not None:
        print(f"(c) naive fp32 NCHW, default malloc : {naive:8.1f} img/s")
    print(f"    raw model, decam's settings     : {unfolded:8.1f} img/s" + x_naive(unfolded))
    if args.compile:
        print(f"    ... with BatchNorm folded       : {folded:8.1f} img/s" + x_naive(folded))
    print(f"(a) ... with BatchNorm folded{' and compiled' if args.compile else ''} (as decam searches): "
          f"{raw:8.1f} img/s" + x_naive(raw))
    print(f"(b) decam search                     : {qps:8.1f} queries/s" + x_naive(qps))
    print(f"ratio (b)/(a)                        : {qps / raw:8.3f}")
    print(f"search: {exp.queries} queries in {search_s:.2f} s; per stage: "
          + ", ".join(f"{k} {v:.2f} s ({100 * v / search_s:.1f} %)" for k, v in exp.timings.items()))
    if args.quality_images:
        rows = quality(args)
        for name, a, b, c in rows:
            print(f"  {name:<40} DiffAUC fp32 {a:6.2f}  bf16 {b:6.2f} ({b - a:+.2f})  fp32, other seed {c:6.2f} ({c - a:+.2f})")
        bf16 = [b - a for _, a, b, _ in rows]
        seed = [c - a for _, a, _, c in rows]
        print(f"over {len(rows)} photos: bf16 - fp32 (same seeds) {_mean_se(bf16)}, mean |diff| "
              f"{sum(map(abs, bf16)) / len(bf16):.2f}; fp32 other seed - fp32 {_mean_se(seed)}, mean |diff| "
              f"{sum(map(abs, seed)) / len(seed):.2f}")
    print(json.dumps({"naive": naive, "raw_unfolded": unfolded, "raw": raw, "decam": qps, "ratio": qps / raw, "timings": exp.timings}))


if __name__ == "__main__":
    main()
