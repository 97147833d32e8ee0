"""One shared search for the top 3 classes vs one search per class, at the same budget per search.

For each of N report-half dev photos (``dev_photos.split()``, spread evenly), decam explains the model's
top-3 classes twice: with ONE search (``target="top3"``, budget B; its fitness rewards the first class,
config ``reward``) that yields all three maps, and with each class's OWN search (``target=class``, budget B
each, so 3 × B queries). Every map is scored with the RISE reference substrates
(``decam.evaluation.metrics.insertion_deletion``: deletion to 0 in the normalized input, insertion from the
reference blur, 224 steps) for its own class. The table gives, per rank (1 = the class the shared search
is scored on, 2 and 3 the others), the mean DiffAUC ×100 of the shared and the own maps, the paired
difference shared − own ± its standard error, and on how many photos the shared map wins (and ties);
then the queries and seconds: the shared searches' total against the sum of the own searches. With
``reward=first`` (the default) the rank-1 class's own search is the shared search over again (same
fitness, same seed), so rank 1 should come out equal: a check, not a finding; ``reward=mean`` makes
the shared search reward all three classes and rank 1 a real comparison.

Each photo's result is cached as ``OUT/<photo>.json`` with the settings that made it, so a rerun resumes
(a cache made with other settings is redone); ``OUT/table.md`` holds the last table.

    python experiments/shared_search.py                                   # 12 photos, budget 1633
    python experiments/shared_search.py --photos 1 --budget 200 --out /tmp/shared   # a quick check
    python experiments/shared_search.py reward=mean device=cuda batch_size=256       # decam config keys
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_photos import DEFAULT_FOLDER, split, spread  # noqa: E402

TOP = 3


def explain_photo(explainer, runner, path: Path) -> dict:
    """The shared search and each class's own search on one photo, every map scored for its class."""
    from decam.evaluation.metrics import insertion_deletion
    from decam.io.images import open_image

    x = explainer.prepare(open_image(path))

    def scored(sal: np.ndarray, target: int) -> dict:
        s = insertion_deletion(runner, x, sal, target, normalization=explainer.model.normalization,
                               batch_size=runner.batch_size)
        return {"diff": s.diff, "insertion": s.insertion, "deletion": s.deletion}

    start = time.perf_counter()
    shared = explainer.explain(x, f"top{TOP}")
    shared_seconds = time.perf_counter() - start
    classes = []
    for rank, t in enumerate(shared.targets, start=1):
        start = time.perf_counter()
        own = explainer.explain(x, t.target)
        own_seconds = time.perf_counter() - start
        classes.append({"rank": rank, "target": t.target, "class_name": t.class_name, "probability": t.probability,
                        "shared": scored(t.saliency, t.target), "own": scored(own.saliency, t.target),
                        "own_queries": own.queries, "own_seconds": own_seconds})
    return {"photo": path.name, "shared_queries": shared.queries, "shared_seconds": shared_seconds, "classes": classes}


def _paired(delta: np.ndarray) -> str:
    se = delta.std(ddof=1) / np.sqrt(delta.size) if delta.size > 1 else 0.0
    return f"{100 * delta.mean():+.1f} ± {100 * se:.1f}"


def table(results: list[dict], settings: dict) -> str:
    """The markdown report: DiffAUC ×100 per rank (shared, own, paired shared − own ± s.e., shared wins), then queries."""
    lines = [f"{len(results)} report-half photos, {settings['model']}, budget {settings['budget']} per search"
             + (f", {' '.join(settings['overrides'])}" if settings["overrides"] else "") + "; DiffAUC ×100 with the "
             "RISE reference substrates.\n",
             "| rank | photos | DiffAUC shared | DiffAUC own | shared − own (s.e.) | shared better (equal) |",
             "|---|---|---|---|---|---|"]
    for rank in range(1, TOP + 1):
        pairs = [(c["shared"]["diff"], c["own"]["diff"]) for r in results for c in r["classes"] if c["rank"] == rank]
        if not pairs:
            continue
        shared, own = (np.array(v) for v in zip(*pairs))
        label = f"{rank} (searched)" if rank == 1 else str(rank)
        lines.append(f"| {label} | {len(pairs)} | {100 * shared.mean():.1f} | {100 * own.mean():.1f} | "
                     f"{_paired(shared - own)} | {int((shared > own).sum())}/{len(pairs)} "
                     f"({int((shared == own).sum())}) |")
    shared_q = sum(r["shared_queries"] for r in results)
    own_q = sum(c["own_queries"] for r in results for c in r["classes"])
    shared_s = sum(r["shared_seconds"] for r in results)
    own_s = sum(c["own_seconds"] for r in results for c in r["classes"])
    lines += ["", "| searches | queries (all photos) | seconds (all photos) |", "|---|---|---|",
              f"| one shared search per photo | {shared_q} | {shared_s:.0f} |",
              f"| one own search per class | {own_q} | {own_s:.0f} |"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="decam config keys (reward=mean, device=cuda)")
    parser.add_argument("--photos", type=int, default=12, help="report-half photos, spread evenly (default 12)")
    parser.add_argument("--budget", type=int, default=1633, help="model queries per search (default 1633)")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--out", default="shared-search", help="cache and table folder (default shared-search)")
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER), help="the dev photos (default: shared/data/imagenet-dev)")
    args = parser.parse_args()

    import torch

    from decam.config import load_config
    from decam.models import ModelRunner
    from decam.search.explainer import Explainer

    settings = {"model": args.model, "budget": args.budget, "top": TOP, "overrides": list(args.overrides)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = spread(split(args.folder)[1], args.photos)
    explainer = runner = None
    results = []
    for i, path in enumerate(photos, 1):
        cache = out / f"{path.stem}.json"
        if cache.exists():
            saved = json.loads(cache.read_text())
            if saved.get("settings") == settings:
                results.append(saved["result"])
                continue
        if explainer is None:
            cfg = load_config(None, [{"model": args.model, "budget": args.budget}, *args.overrides])
            explainer = Explainer(config=cfg)
            runner = ModelRunner(explainer.forward, cfg.batch_size)
            runner(torch.rand(cfg.batch_size, 3, *explainer.model.input_size, device=explainer.device))  # warm-up:
            # the first search timed must not pay for it
        result = explain_photo(explainer, runner, path)
        cache.write_text(json.dumps({"settings": settings, "result": result}, indent=1))
        results.append(result)
        print(f"[{i}/{len(photos)}] {path.name}: " + ", ".join(
            f"{c['class_name']} shared {100 * c['shared']['diff']:.1f} own {100 * c['own']['diff']:.1f}"
            for c in result["classes"]), flush=True)
    report = table(results, settings)
    (out / "table.md").write_text(report)
    print("\n" + report, end="")


if __name__ == "__main__":
    main()
