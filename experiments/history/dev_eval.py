"""Every dev photo through ``decam evaluate``: the quality table, the equal-budget comparison with RISE
and the query-budget curve of each searcher, as parallel ``decam evaluate`` processes over shards.

Usage (a GPU machine; on a CPU use ``--limit`` and ``--curve-images`` small, it takes hours otherwise):
  python experiments/dev_eval.py --photos ../shared/data/imagenet-dev --out dev-eval \\
      --device cuda --parallel 14

Studies (each a ``decam evaluate`` command, its images split into shards run side by side):
  main      default decam vs RISE-4000, Grad-CAM, FullGrad                       all photos
  eq1000    decam budget=1000 vs RISE-1000 (and eq2000, eq4000 likewise)          all photos
  curve-*   decam with each searcher at 500 … 4000 queries, DE and the paper's
            preset at the paper budget (64 × 201 = 12,864)                      --curve-images photos
``OUT/<study>/shard-<i>/`` holds each shard's ``decam evaluate`` output; ``OUT/<study>.md`` the merged
summary table, and ``OUT/report.md`` the tables the README quotes.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

PAPER_BUDGET = 64 * 201
SEARCHERS = ("de", "cmaes", "ga", "snes", "pgpe")
CURVE_BUDGETS = (500, 1000, 2000, 4000)
PAPER_YAML = str(Path(__file__).resolve().parents[2] / "configs" / "paper.yaml")


def studies(curve_images: int) -> dict[str, tuple[list[str], list[str], int | None]]:
    """name → (methods, overrides, photos: None = all, else the first N of the even spread)."""
    out = {
        "main": (["decam", "rise", "gradcam", "fullgrad"], ["rise.n_masks=4000"], None),
        "eq1000": (["decam", "rise"], ["budget=1000", "rise.n_masks=1000"], None),
        "eq2000": (["decam", "rise"], ["budget=2000", "rise.n_masks=2000"], None),
        "eq4000": (["decam"], ["budget=4000"], None),
    }
    if curve_images > 0:
        for searcher in SEARCHERS:
            for budget in CURVE_BUDGETS:
                out[f"curve-{searcher}-{budget}"] = (["decam"], [f"searcher={searcher}", f"budget={budget}"],
                                                     curve_images)
        out[f"curve-de-{PAPER_BUDGET}"] = (["decam"], [f"budget={PAPER_BUDGET}"], curve_images)
        out[f"curve-paper-{PAPER_BUDGET}"] = (["decam"], ["--config", PAPER_YAML], curve_images)
        out["curve-paper-1000"] = (["decam"], ["--config", PAPER_YAML, "budget=1000"], curve_images)
    return out


def photos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpeg", ".jpg", ".png"})


def spread(items: list, n: int) -> list:
    """``n`` items evenly spread over the (sorted) list, so a small subset still covers many classes."""
    idx = np.linspace(0, len(items) - 1, num=min(n, len(items))).round().astype(int)
    return [items[i] for i in idx]


def shard_commands(name, methods, overrides, photos, args) -> list[tuple[str, list[str]]]:
    from decam.evaluation.methods import METHODS

    n_shards = max(1, min(len(photos), round(len(photos) / args.photos_per_shard)))
    # a method's options (rise.batch_size=256) go only to commands that run that method
    common = [o for o in args.overrides if o.split(".")[0] not in set(METHODS) - set(methods)]
    out = []
    for i in range(n_shards):
        part = photos[i::n_shards]
        cmd = [sys.executable, "-m", "decam", "evaluate", *map(str, part), "--labels", str(args.labels),
               "--methods", ",".join(methods), "--out", str(args.out / name / f"shard-{i}"), "--quiet",
               "--gallery", "0", f"device={args.device}", *common, *overrides]
        out.append((f"{name}/shard-{i}", cmd))
    return out


def run_all(commands: list[tuple[str, list[str]]], parallel: int, log_dir: Path) -> dict[str, int]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.time()

    def run(item):
        label, cmd = item
        log = log_dir / (label.replace("/", "_") + ".log")
        with open(log, "w") as f:  # run outside the checkout, so the installed decam is the one imported
            rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=log_dir)
        print(f"[{time.time() - start:6.0f} s] {label}: exit {rc}", flush=True)
        return label, rc

    with ThreadPoolExecutor(parallel) as pool:
        return dict(pool.map(run, commands))


def read_rows(study_dir: Path):
    from decam.workflows.evaluate import Row

    rows = []
    for path in sorted(study_dir.glob("shard-*/results.csv")):
        with open(path, newline="") as f:
            rows += [Row.from_record(rec) for rec in csv.DictReader(f)]
    return rows


def paired(a: dict[str, float], b: dict[str, float]) -> str:
    common = sorted(set(a) & set(b))
    d = np.array([a[k] - b[k] for k in common])
    if d.size < 2:
        return "n/a"
    return (f"{100 * d.mean():+.1f} ± {100 * d.std(ddof=1) / np.sqrt(d.size):.1f} "
            f"({int((d > 0).sum())}/{d.size})")


def report(out: Path, names: list[str]) -> str:
    """Merged per-study summaries (``OUT/<study>.md``) and the tables the README quotes."""
    from decam.evaluation.tables import summary_markdown

    diffs: dict[tuple[str, str], dict[str, float]] = {}
    stats: dict[tuple[str, str], tuple[float, float, int, float]] = {}
    for name in names:
        rows = read_rows(out / name)
        methods = list(dict.fromkeys(r.method for r in rows))
        (out / f"{name}.md").write_text(summary_markdown(rows, methods, "efficientnet_lite0", []))
        for m in methods:
            rs = [r for r in rows if r.method == m]
            diffs[name, m] = {Path(r.image).name: r.diff for r in rs}
            stats[name, m] = (np.mean([r.queries for r in rs]), np.mean([r.seconds for r in rs]), len(rs),
                              np.median([r.diff for r in rs]))

    def cell(key):
        d = np.array(list(diffs[key].values()))
        return f"{100 * d.mean():.1f} ± {100 * d.std(ddof=1):.1f}" if d.size > 1 else "n/a"

    lines = ["# decam on the dev photos", ""]
    if ("main", "decam") in diffs:
        lines += ["## Default decam vs the baselines (all photos)", "",
                  "| method | photos | queries / photo | DiffAUC mean ± std | median | s / photo | "
                  "decam − method, paired (s.e.) (decam better) |", "|---|---|---|---|---|---|---|"]
        for m in ("decam", "rise", "gradcam", "fullgrad"):
            if ("main", m) in diffs:
                q, s, n, med = stats["main", m]
                vs = "—" if m == "decam" else paired(diffs["main", "decam"], diffs["main", m])
                lines.append(f"| {m} | {n} | {q:.0f} | {cell(('main', m))} | {100 * med:.1f} | {s:.2f} | {vs} |")
        lines.append("")
    eq = [(b, f"eq{b}") for b in (1000, 2000, 4000)]
    if any((n, "decam") in diffs for _, n in eq):
        lines += ["## Equal query budgets: decam vs RISE", "",
                  "| queries | decam | RISE | decam − RISE, paired (s.e.) (decam better) |", "|---|---|---|---|"]
        for b, n in eq:
            rise = (n, "rise") if (n, "rise") in diffs else ("main", "rise") if b == 4000 else None
            if (n, "decam") in diffs and rise in diffs:
                lines.append(f"| {b} | {cell((n, 'decam'))} | {cell(rise)} | {paired(diffs[n, 'decam'], diffs[rise])} |")
        lines.append("")
    curve = [n for n in names if n.startswith("curve-")]
    if curve:
        lines += ["## Query budget curve (DiffAUC mean ± std; paired vs the paper's preset at its budget)", "",
                  "| configuration | queries / photo | photos | DiffAUC | vs paper preset @ 12,864 | s / photo |",
                  "|---|---|---|---|---|---|"]
        ref = diffs.get((f"curve-paper-{PAPER_BUDGET}", "decam"), {})
        for n in curve:
            q, s, k, _ = stats[n, "decam"]
            lines.append(f"| {n.removeprefix('curve-')} | {q:.0f} | {k} | {cell((n, 'decam'))} | "
                         f"{paired(diffs[n, 'decam'], ref) if ref else 'n/a'} | {s:.2f} |")
        lines.append("")
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    if curve:
        curve_figure({n: stats[n, "decam"][0] for n in curve}, {n: diffs[n, "decam"] for n in curve},
                     out / "budget_curve.png")
    return text


def curve_figure(queries: dict[str, float], diffs: dict[str, dict[str, float]], path: Path) -> None:
    """DiffAUC against queries per photo, one line per searcher, the paper's preset as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0, 4.2), dpi=120)
    groups: dict[str, list[tuple[float, float]]] = {}
    for name, q in queries.items():
        label = name.removeprefix("curve-").rsplit("-", 1)[0]
        groups.setdefault(label, []).append((q, 100 * float(np.mean(list(diffs[name].values())))))
    for label, points in groups.items():
        points.sort()
        style = dict(marker="s", linestyle=":", color="black") if label == "paper" else dict(marker="o")
        name = "paper preset\n(configs/paper.yaml)" if label == "paper" else f"{label} (default config)"
        ax.plot(*zip(*points), label=name, **style)
    ax.set_xscale("log")
    ax.set_xlabel("model queries per photo")
    ax.set_ylabel("DiffAUC ×100 (mean over photos)")
    ax.set_title(f"decam: quality against query budget ({len(next(iter(diffs.values())))} dev photos)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/imagenet-dev"))
    parser.add_argument("--labels", type=Path, help="default: PHOTOS/labels.csv")
    parser.add_argument("--out", type=Path, default=Path("dev-eval"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parallel", type=int, default=2, help="decam evaluate processes at a time")
    parser.add_argument("--photos-per-shard", type=int, default=14)
    parser.add_argument("--limit", type=int, help="first N photos only (sorted by name)")
    parser.add_argument("--curve-images", type=int, default=12, help="photos in the budget curve (0: no curve)")
    parser.add_argument("--only", help="comma-separated study names (default: all)")
    parser.add_argument("--report-only", action="store_true", help="merge existing outputs, run nothing")
    parser.add_argument("overrides", nargs="*", help="key=value for every decam evaluate (batch_size=256 …)")
    args = parser.parse_args()
    args.labels = (args.labels or args.photos / "labels.csv").resolve()
    args.photos, args.out = args.photos.resolve(), args.out.resolve()

    photos = photos_in(args.photos)[: args.limit]
    plan = studies(args.curve_images)
    if args.only:
        plan = {k: v for k, v in plan.items() if k in args.only.split(",")}
    if not args.report_only:
        commands = []
        for name, (methods, overrides, n) in plan.items():
            commands += shard_commands(name, methods, overrides, photos if n is None else spread(photos, n), args)
        commands.sort(key=lambda c: (not c[0].startswith("main"), str(PAPER_BUDGET) not in c[0]))  # longest first
        (args.out / "logs").mkdir(parents=True, exist_ok=True)
        codes = run_all(commands, args.parallel, args.out / "logs")
        failed = [k for k, rc in codes.items() if rc != 0]
        if failed:
            print(f"failed shards (see {args.out / 'logs'}): {', '.join(failed)}", file=sys.stderr)
    print(report(args.out, [n for n in plan if (args.out / n).is_dir()]))


if __name__ == "__main__":
    main()
