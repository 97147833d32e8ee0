"""Throughput over the wire: decam's queries/s with the model behind ``decam serve`` on this machine,
against the same search with the model in-process.

Starts ``decam serve MODEL --port 0`` (127.0.0.1), then alternates the searches over ``--rounds``
rounds, each on the embedded photo with the same seed and config. Queries/s counts every image the
search sent, over the search's wall time; on a shared machine it moves with the other jobs, so
three figures are printed per kind: the best round (and its ratio to the best in-process round),
the median over rounds of the ratio to the same round's in-process search, and the CPU time per
query of client and server together (what the wire costs, whatever the other jobs do). Client and
server share this machine's cores: while the server runs the model, the client renders, composes
and encodes the next request, so in-flight requests compete with it.

Usage: python experiments/bench_remote.py [--model efficientnet_lite0] [--generations 20]
       [--popsize 32] [--rounds 3] [--in-flight 1 2 4] [--dtype float32 float16] [--in-process-batch 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def explainer(model: str, args: argparse.Namespace, batch_size: int | None = None, **options):
    from decam.config import load_config
    from decam.search.explainer import Explainer

    values = {"model": model, "generations": args.generations, "searcher.popsize": args.popsize,
              "batch_size": batch_size or args.batch_size, "precision": args.precision, "seed": 0}
    values.update({f"model_options.{k}": v for k, v in options.items()})
    return Explainer(config=load_config(None, [values]))


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def search_rate(exp_obj, image, server_pid: int) -> dict:
    cpu, server = process_cpu(os.getpid()), process_cpu(server_pid)
    start = time.perf_counter()
    exp = exp_obj.explain(image)
    seconds = time.perf_counter() - start
    cpu = process_cpu(os.getpid()) - cpu + process_cpu(server_pid) - server  # the idle side adds ~0
    return {"queries_per_s": exp.queries / seconds, "cpu_ms_per_query": 1000 * cpu / exp.queries,
            "queries": exp.queries, "seconds": seconds, "remote": exp.remote}


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
    parser.add_argument("--in-process-batch", type=int, nargs="*", default=[],
                        help="also time in-process searches with these batch sizes")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import torch

    from decam.io.images import default_image

    image = default_image()[1]
    server, url = start_server(args.model, args.precision, args.batch_size)
    rounds: dict[str, list[dict]] = {}
    try:
        kinds = {"in-process": explainer(args.model, args)}
        for b in args.in_process_batch:  # what the server's model sees when in-flight requests split a batch
            kinds[f"in-process batch_size={b}"] = explainer(args.model, args, batch_size=b)
        for dtype in args.dtype:
            for k in args.in_flight:
                kinds[f"http in_flight={k} {dtype}"] = explainer(url, args, in_flight=k, dtype=dtype)
        for name, e in kinds.items():  # warm-up: oneDNN primitives, allocator pools, connections
            e.explain(image)
        for r in range(args.rounds):
            for name, e in kinds.items():
                result = search_rate(e, image, server.pid)
                rounds.setdefault(name, []).append(result)
                print(f"round {r + 1} {name:<28} {result['queries_per_s']:7.1f} queries/s "
                      f"{result['cpu_ms_per_query']:6.2f} CPU ms/query {result['remote'] or ''}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    system = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "model": args.model, "generations": args.generations,
              "popsize": args.popsize, "batch_size": args.batch_size, "precision": args.precision,
              "rounds": args.rounds, "load_average": os.getloadavg()}
    print(json.dumps(system))
    summary = summarize(rounds)
    print(f"{'':<30} {'best q/s':>9} {'x in-proc':>9} {'median paired x':>16} {'CPU ms/q':>9} {'x in-proc':>9}")
    for name, row in summary.items():
        print(f"{name:<30} {row['best']:9.1f} {row['best_ratio']:9.3f} {row['median_paired_ratio']:16.3f} "
              f"{row['cpu_ms']:9.2f} {row['cpu_ratio']:9.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"system": system, "summary": summary, "rounds": rounds}, f, indent=1)


def summarize(rounds: dict[str, list[dict]]) -> dict[str, dict]:
    """Per kind: best queries/s (and / in-process best), the median over rounds of queries/s divided by
    the same round's in-process figure, and the least CPU time per query (and / in-process)."""
    base = rounds["in-process"]
    best_base = max(r["queries_per_s"] for r in base)
    cpu_base = min(r["cpu_ms_per_query"] for r in base)
    out = {}
    for name, results in rounds.items():
        best = max(r["queries_per_s"] for r in results)
        paired = [r["queries_per_s"] / b["queries_per_s"] for r, b in zip(results, base)]
        cpu = min(r["cpu_ms_per_query"] for r in results)
        out[name] = {"best": best, "best_ratio": best / best_base, "median_paired_ratio": statistics.median(paired),
                     "cpu_ms": cpu, "cpu_ratio": cpu_base / cpu}
    return out


if __name__ == "__main__":
    main()
