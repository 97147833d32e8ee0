"""Throughput benchmark: decam's search and the other query methods against the model alone, on this machine.

Every figure comes from one run of this script, so they compare as ratios (absolute numbers from
another machine are not evidence). Each measurement runs in a clean subprocess, the kinds alternate
over ``--rounds`` rounds and each keeps its best round (the machine may be shared):

raw     the very model decam searches with — BatchNorm folded, same precision, channels_last, the
        same batch, compile off — on a fixed random batch; glibc tuned by environment variables
naive   fp32, NCHW, unfolded, default glibc malloc
search  decam's queries/s during a real search (the explainer warmed up by a first search), with
        its stages and the minor page faults per query of the search
methods every query method (RISE, LIME, KernelSHAP, SHAP, Sobol, HSIC, occlusion) through the same
        forward path at the search's budget (queries/s per method)
process minor page faults of a whole ``decam explain`` process with the default config, per query,
        and the marginal cost (default budget minus a one-generation run)

Usage: python experiments/bench_throughput.py [--generations 20] [--popsize 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TUNED_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 34), "MALLOC_TOP_PAD_": str(1 << 29),
             "DECAM_NO_MALLOPT": "1"}
QUERY_METHODS = ("rise", "lime", "kernelshap", "shap", "sobol", "hsic", "occlusion")
ISA = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16")


def system() -> dict:
    import torch

    cpu = platform.processor() or "?"
    flags: set[str] = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and cpu in ("?", "x86_64", ""):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    onednn = re.search(r"(?:oneDNN|MKL-DNN) v([\d.]+)", torch.__config__.show())
    return {"cpu": cpu, "isa": [f for f in ISA if f in flags], "threads": torch.get_num_threads(),
            "torch": torch.__version__, "onednn": onednn[1] if onednn else "?"}


# --- the measurements, each run by a worker subprocess -------------------------------------------------


def worker_raw(args: argparse.Namespace, naive: bool) -> dict:
    import torch

    from decam.models import FastForward, load_model

    model = load_model(args.model, args.weights)
    if naive:
        module = model.module.eval()
        forward = lambda x: module(x)  # noqa: E731 - fp32, NCHW, unfolded
        x = torch.rand(args.popsize, 3, *model.input_size)
    else:
        forward = FastForward(model, "cpu", args.precision, fold=True)
        x = torch.rand(args.popsize, 3, *model.input_size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(2):
            forward(x)
        start = time.perf_counter()
        for _ in range(args.generations):
            forward(x)
    return {"images_per_s": args.generations * args.popsize / (time.perf_counter() - start)}


def _explainer(args: argparse.Namespace, **extra: str):
    from decam.config import load_config
    from decam.search.explainer import Explainer

    values = {"generations": args.generations, "searcher.popsize": args.popsize, "batch_size": args.popsize,
              "precision": args.precision, "model": args.model, "weights": args.weights, **extra}
    return Explainer(config=load_config(None, [values]))


def worker_search(args: argparse.Namespace) -> dict:
    from decam.io.images import default_image

    explainer, image = _explainer(args), default_image()[1]
    explainer.explain(image)  # warm-up: oneDNN primitives, allocator pools
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    exp = explainer.explain(image)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    seconds = sum(exp.timings.values())
    return {"queries_per_s": (exp.queries - 1) / seconds, "queries": exp.queries, "timings": exp.timings,
            "faults_per_query": faults / exp.queries, "precision": explainer.precision}


def worker_methods(args: argparse.Namespace) -> dict:
    import torch

    from decam.evaluation.methods import create_method
    from decam.models import ModelRunner

    explainer = _explainer(args)
    x = explainer.prepare(__import__("decam.io.images", fromlist=["default_image"]).default_image()[1])
    runner = ModelRunner(explainer.forward, args.popsize)
    out = {}
    budget = args.generations * args.popsize
    for name in QUERY_METHODS:
        method = create_method(name, explainer.model, runner, budget=budget, batch_size=args.popsize)
        method(x, 0)  # warm-up
        start = time.perf_counter()
        method(x, 0)
        out[name] = method.queries / (time.perf_counter() - start)
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return out


def process_faults(args: argparse.Namespace) -> dict:
    """Minor page faults of whole ``decam explain`` processes (default config; and one generation)."""
    out = {}
    for label, extra in (("default", []), ("one_generation", ["--generations", "1"])):
        with tempfile.TemporaryDirectory() as tmp:
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "decam", "explain", "--quiet", "--out", tmp, *extra], check=True)
            wall = time.perf_counter() - start
            faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before
            queries = json.loads((Path(tmp) / "coffee.json").read_text())["queries"]
        out[label] = {"faults": faults, "queries": queries, "wall_s": wall}
    d, g = out["default"], out["one_generation"]
    out["per_query_whole_process"] = d["faults"] / d["queries"]
    out["per_query_marginal"] = (d["faults"] - g["faults"]) / (d["queries"] - g["queries"])
    return out


def run_worker(kind: str, argv: list[str], env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, *argv]
    done = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{kind} worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--generations", type=int, default=20, help="search generations = raw batches")
    parser.add_argument("--popsize", type=int, default=64, help="population = model batch")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-process", action="store_true", help="skip the whole-process page-fault count")
    parser.add_argument("--worker", choices=("raw", "naive", "search", "methods"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work = {"raw": lambda: worker_raw(args, False), "naive": lambda: worker_raw(args, True),
                "search": lambda: worker_search(args), "methods": lambda: worker_methods(args)}[args.worker]
        print(json.dumps(work()))
        return

    argv = [a for a in sys.argv[1:]]
    info = system()
    print(f"CPU {info['cpu']}; ISA {' '.join(info['isa'])}; {info['threads']} threads; torch {info['torch']}, "
          f"oneDNN {info['onednn']}; {args.model}, batch = popsize {args.popsize}, {args.generations} batches")
    best: dict[str, dict] = {}
    keys = {"raw": "images_per_s", "naive": "images_per_s", "search": "queries_per_s"}
    for r in range(args.rounds):
        for kind, env in (("raw", TUNED_ENV), ("search", None), ("naive", {"DECAM_NO_MALLOPT": "1"})):
            res = run_worker(kind, argv, env)
            if kind not in best or res[keys[kind]] > best[kind][keys[kind]]:
                best[kind] = res
            print(f"  round {r + 1}: {kind} {res[keys[kind]]:.1f}", flush=True)
    methods = run_worker("methods", argv)
    raw, naive, search = best["raw"]["images_per_s"], best["naive"]["images_per_s"], best["search"]["queries_per_s"]
    timings = best["search"]["timings"]
    total = sum(timings.values())
    print(f"\nprecision {best['search']['precision']}; best of {args.rounds} rounds")
    print(f"naive fp32 NCHW, default malloc        {naive:8.1f} img/s")
    print(f"raw: folded model as decam searches     {raw:8.1f} img/s   {raw / naive:5.1f}x naive")
    print(f"decam search                            {search:8.1f} q/s     {search / naive:5.1f}x naive, "
          f"{search / raw:.3f} of raw")
    for name, qps in methods.items():
        print(f"{name:<40}{qps:8.1f} q/s     {qps / search:.3f} of decam's search")
    print("search stages: " + ", ".join(f"{k} {100 * v / total:.1f} %" for k, v in timings.items())
          + f"; minor page faults per query during the search: {best['search']['faults_per_query']:.1f}")
    result = {"system": info, "naive": naive, "raw": raw, "search": search, "ratio": search / raw,
              "x_naive": search / naive, "methods": methods, "search_detail": best["search"]}
    if not args.skip_process:
        proc = process_faults(args)
        d = proc["default"]
        print(f"decam explain (default config, {d['queries']} queries): {d['faults']} minor page faults in "
              f"{d['wall_s']:.1f} s = {proc['per_query_whole_process']:.0f} per query for the whole process, "
              f"{proc['per_query_marginal']:.1f} per query marginal (startup: "
              f"{proc['one_generation']['faults']} faults for {proc['one_generation']['queries']} queries)")
        result["process"] = proc
    print(json.dumps(result))


if __name__ == "__main__":
    main()
