"""Throughput over the wire: decam's queries/s with the model behind ``decam serve`` on this machine,
against the same search with the model in-process.

Starts ``decam serve MODEL --port 0`` (127.0.0.1), then alternates the two searches over ``--rounds``
rounds, each on the embedded photo with the same seed and config, keeping each kind's best round
(the machine may be shared). Queries/s counts every image the search sent, over the search's
wall time. Client and server share this machine's cores: while the server runs the model, the
client renders, composes and encodes the next request, so in-flight requests compete with it.

Usage: python experiments/bench_remote.py [--model efficientnet_lite0] [--generations 20]
       [--popsize 32] [--rounds 3] [--in-flight 1 2 4] [--dtype float32 float16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def start_server(model: str, precision: str, batch_size: int) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "decam", "serve", model, "--port", "0", "--quiet", f"precision={precision}",
           f"batch_size={batch_size}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"decam serve did not start: {line}{proc.stderr.read()}")
    return proc, line.split(" at ", 1)[1].split()[0]


def explainer(model: str, args: argparse.Namespace, **options):
    from decam.config import load_config
    from decam.search.explainer import Explainer

    values = {"model": model, "generations": args.generations, "searcher.popsize": args.popsize,
              "batch_size": args.batch_size, "precision": args.precision, "seed": 0}
    values.update({f"model_options.{k}": v for k, v in options.items()})
    return Explainer(config=load_config(None, [values]))


def search_rate(exp_obj, image) -> dict:
    start = time.perf_counter()
    exp = exp_obj.explain(image)
    seconds = time.perf_counter() - start
    return {"queries_per_s": exp.queries / seconds, "queries": exp.queries, "seconds": seconds,
            "remote": exp.remote}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--popsize", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[2])
    parser.add_argument("--dtype", nargs="+", default=["float32"])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import torch

    from decam.io.images import default_image

    image = default_image()[1]
    server, url = start_server(args.model, args.precision, args.batch_size)
    try:
        kinds = {"in-process": explainer(args.model, args)}
        for dtype in args.dtype:
            for k in args.in_flight:
                kinds[f"http in_flight={k} {dtype}"] = explainer(url, args, in_flight=k, dtype=dtype)
        for name, e in kinds.items():  # warm-up: oneDNN primitives, allocator pools, connections
            e.explain(image)
        best: dict[str, dict] = {}
        for r in range(args.rounds):
            for name, e in kinds.items():
                result = search_rate(e, image)
                print(f"round {r + 1} {name:<28} {result['queries_per_s']:7.1f} queries/s "
                      f"{result['remote'] or ''}", flush=True)
                if name not in best or result["queries_per_s"] > best[name]["queries_per_s"]:
                    best[name] = result
    finally:
        server.terminate()
        server.wait(timeout=30)
    base = best["in-process"]["queries_per_s"]
    system = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "model": args.model, "generations": args.generations,
              "popsize": args.popsize, "batch_size": args.batch_size, "precision": args.precision,
              "rounds": args.rounds}
    print(json.dumps(system))
    print(f"{'':<30} {'queries/s':>10} {'x in-process':>13}")
    for name, result in best.items():
        print(f"{name:<30} {result['queries_per_s']:10.1f} {result['queries_per_s'] / base:13.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"system": system, "best": best}, f, indent=1)


if __name__ == "__main__":
    main()
