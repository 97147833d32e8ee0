"""Soak test: a long ``decam explain`` over many photos and a long ``decam sweep``, watched from outside.

Memory (the process's resident set, read from /proc every ``--interval`` seconds) must stay flat
once warmed up, and throughput must not sag: the figures are printed as Markdown (and written to
``<work>/soak.md``) for docs/reliability.md. A benchmark, run by hand, not a test:

    python experiments/soak.py --photos ../shared/data/imagenet-dev --images 150 --budget 500 \\
        --children 60 --sweep-budget 256 --work /tmp/decam-soak

The photos are repeated with augmentation (flip, crop, small rotation, brightness and contrast), so
no two inputs are the same file. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

SUFFIXES = {".jpg", ".jpeg", ".png"}


def augmented(photos: Path, n: int, folder: Path, seed: int = 0) -> list[Path]:
    """``n`` JPEGs made from the photos in ``photos``, taken in turn, each randomly augmented."""
    sources = sorted(p for p in photos.iterdir() if p.suffix.lower() in SUFFIXES)
    if not sources:
        sys.exit(f"no photos in {photos}")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        with Image.open(sources[i % len(sources)]) as im:
            im = im.convert("RGB")
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        w, h = im.size
        scale = float(rng.uniform(0.8, 1.0))
        cw, ch = int(w * scale), int(h * scale)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im = im.crop((x, y, x + cw, y + ch)).rotate(float(rng.uniform(-10, 10)), resample=Image.Resampling.BILINEAR)
        im = ImageEnhance.Brightness(im).enhance(float(rng.uniform(0.85, 1.15)))
        im = ImageEnhance.Contrast(im).enhance(float(rng.uniform(0.85, 1.15)))
        path = folder / f"soak_{i:04d}.jpg"
        im.save(path, quality=90)
        out.append(path)
    return out


def rss_mib(pid: int) -> float | None:
    """Resident set of process ``pid`` in MiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def load_average() -> float:
    """The machine's 1-minute load average: other work on a shared machine moves throughput."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def watch(cmd: list[str], count, interval: float, log: Path) -> tuple[int, list[tuple[float, float, int, float]]]:
    """Run ``cmd``; every ``interval`` s sample (seconds, RSS MiB, ``count()`` items done, load average).
    Returns its exit code and the samples."""
    start = time.monotonic()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT)
        samples = []
        while proc.poll() is None:
            rss = rss_mib(proc.pid)
            if rss is not None:
                samples.append((time.monotonic() - start, rss, count(), load_average()))
            try:
                proc.wait(timeout=interval)
            except subprocess.TimeoutExpired:
                pass
    samples.append((time.monotonic() - start, float("nan"), count(), load_average()))
    return proc.returncode, samples


def save_samples(path: Path, samples: list[tuple[float, float, int, float]]) -> None:
    path.write_text("seconds,rss_mib,done,load1\n" + "".join(f"{t:.1f},{r:.1f},{n},{a:.2f}\n" for t, r, n, a in samples))


def analyse(name: str, samples: list[tuple[float, float, int, float]], total: int, unit: str, warmup: float) -> dict:
    """After warm-up (the first ``warmup`` of the items): the RSS band, how its median and its peak moved
    from the first to the last part of the run, its trend per 100 items; throughput and machine load in
    each quarter of the items done after warm-up."""
    live = [s for s in samples if not np.isnan(s[1])]
    start = max(1, int(np.ceil(warmup * total)))
    warm = [s for s in live if s[2] >= start] or live[-1:]
    rss = [s[1] for s in warm]
    quarter = max(1, len(rss) // 4)
    half = max(1, len(rss) // 2)
    items = np.array([s[2] for s in warm], dtype=float)
    slope = float(np.polyfit(items, rss, 1)[0]) * 100 if len(set(items)) > 2 else float("nan")

    def first(count: int) -> float | None:
        return next((t for t, _, c, _ in samples if c >= count), None)

    quarters, loads = [], []
    for q in range(4):
        lo, hi = start + (total - start) * q // 4, start + (total - start) * (q + 1) // 4
        t0, t1 = first(lo), first(hi)
        if t0 is not None and t1 is not None and t1 > t0 and hi > lo:
            quarters.append((hi - lo) / (t1 - t0) * 60)
            loads.append(statistics.mean(a for t, _, _, a in samples if t0 <= t <= t1) if any(
                t0 <= t <= t1 for t, *_ in samples) else float("nan"))
    return {
        "name": name, "unit": unit, "items": samples[-1][2], "total": total, "seconds": samples[-1][0],
        "warm_samples": len(warm), "rss_min": min(rss), "rss_median": statistics.median(rss), "rss_max": max(rss),
        "median_growth": statistics.median(rss[-quarter:]) / statistics.median(rss[:quarter]) - 1,
        "peak_growth": max(rss[half:]) / max(rss[:half]) - 1 if len(rss) > 1 else 0.0,
        "slope": slope, "quarters": quarters, "loads": loads,
    }


def report(results: list[dict], args: argparse.Namespace, commands: list[str]) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [f"Run {datetime.date.today().isoformat()} on {cpu} ({os.cpu_count()} CPUs visible, shared), Python "
             f"{platform.python_version()}; RSS sampled every {args.interval:g} s; warm-up = the first "
             f"{args.warmup:.0%} of the items.", "", "```bash", *commands, "```", "",
             "| run | items | wall | RSS after warm-up: min / median / max (MiB) | median: last vs first quarter "
             "| peak: second vs first half | RSS trend | throughput per quarter after warm-up | load average |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        quarters = " / ".join(f"{q:.1f}" for q in r["quarters"])
        loads = " / ".join(f"{a:.1f}" for a in r["loads"])
        lines.append(f"| {r['name']} | {r['items']} of {r['total']} | {r['seconds'] / 60:.1f} min | "
                     f"{r['rss_min']:.0f} / {r['rss_median']:.0f} / {r['rss_max']:.0f} ({r['warm_samples']} samples) | "
                     f"{r['median_growth']:+.1%} | {r['peak_growth']:+.1%} | {r['slope']:+.0f} MiB per 100 {r['unit']} | "
                     f"{quarters} {r['unit']}/min | {loads} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, required=True, help="folder of photos to repeat with augmentation")
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--budget", type=int, default=500, help="model queries per image (explain)")
    ap.add_argument("--children", type=int, default=60, help="sweep children: a multiple of 12 (12 configurations)")
    ap.add_argument("--sweep-budget", type=int, default=256, help="model queries per sweep child")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--warmup", type=float, default=0.1, help="fraction of the items counted as warm-up")
    ap.add_argument("--work", type=Path, default=Path("decam-soak"), help="scratch folder (emptied first)")
    ap.add_argument("--skip-explain", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    decam = [sys.executable, "-m", "decam"]
    results, commands = [], []
    if not args.skip_explain:
        augmented(args.photos, args.images, args.work / "images")
        out = args.work / "explain"
        cmd = [*decam, "explain", str(args.work / "images"), "--out", str(out), f"budget={args.budget}",
               f"model={args.model}", "--quiet"]
        commands.append(" ".join(cmd[2:]))
        print(f"explain: {args.images} images, budget {args.budget} ...", flush=True)
        rc, samples = watch(cmd, lambda: len(list(out.glob("*.json"))) if out.exists() else 0, args.interval,
                            args.work / "explain.log")
        save_samples(args.work / "explain-samples.csv", samples)
        if rc != 0:
            sys.exit(f"decam explain exited {rc}; see {args.work / 'explain.log'}")
        results.append(analyse(f"`decam explain`, {args.images} photos, budget {args.budget}", samples,
                               args.images, "images", args.warmup))
    if not args.skip_sweep:
        per_image = 12
        n_images = max(1, args.children // per_image)
        images = augmented(args.photos, n_images, args.work / "sweep-images", seed=1)
        study = args.work / "soak-study.yaml"
        study.write_text(
            f"name: soak\nimages: [{', '.join(str(p) for p in images)}]\n"
            f"base: {{model: {args.model}, budget: {args.sweep_budget}, searcher: {{name: de, popsize: 8}}}}\n"
            "grid:\n  searcher.CR: [0.1, 0.2, 0.5, 0.9]\n  searcher.F: [0.5, 0.8, 1.0]\n"
            "metrics: {n_steps: 16}\n")
        out = args.work / "sweep"
        cmd = [*decam, "sweep", str(study), "--tracking-uri", f"sqlite:///{(args.work / 'mlflow.db').resolve()}",
               "--out", str(out), "--quiet"]
        commands.append(" ".join(cmd[2:]))
        total = per_image * n_images
        print(f"sweep: {total} children, budget {args.sweep_budget} ...", flush=True)

        def children() -> int:
            return sum(1 for p in out.iterdir() if p.is_dir() and p.name != "summary") if out.exists() else 0

        rc, samples = watch(cmd, children, args.interval, args.work / "sweep.log")
        save_samples(args.work / "sweep-samples.csv", samples)
        if rc != 0:
            sys.exit(f"decam sweep exited {rc}; see {args.work / 'sweep.log'}")
        results.append(analyse(f"`decam sweep`, {total} children, budget {args.sweep_budget}", samples, total,
                               "children", args.warmup))
    text = report(results, args, commands)
    (args.work / "soak.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
