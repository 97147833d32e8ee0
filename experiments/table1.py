"""The paper's Table 1: DiffAUC of decam and the baselines, one column per model, on one image folder.

    python experiments/table1.py ../shared/data/imagenet-dev --labels ../shared/data/imagenet-dev/labels.csv \
        --models efficientnet_lite0,torchvision:vgg19,torchvision:resnet50,torchvision:mobilenet_v2 --out /tmp/table1

Each model is evaluated with ``decam.workflows.evaluate`` exactly as ``decam evaluate`` does (same metric, targets,
maps and outputs, in ``OUT/<model>/``); a model whose weights are not available offline gets an
``n/a`` column instead of stopping the table. ``key=value`` arguments configure decam
(``generations=200 searcher.popsize=64``) or a baseline (``rise.n_masks=4000``). Writes ``OUT/table1.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from decam.config import load_config
from decam.errors import DecamError, ModelUnavailableError
from decam.workflows.evaluate import Evaluation, build_methods, read_labels, split_method_options
from decam.workflows.inputs import expand_images, split_items
from decam.io import atomic_open, safe_stem
from decam.models import FastForward, ModelRunner, load_model, tune_allocator

DEFAULT_MODELS = "efficientnet_lite0,torchvision:vgg19,torchvision:resnet50,torchvision:mobilenet_v2"
DEFAULT_METHODS = "decam,gradcam,gradcampp,fullgrad,ig,rise,lime,random"


def evaluate_model(name: str, images: list[Path], methods: list[str], overrides: list[str],
                   labels: dict[str, int] | None, out: Path) -> dict[str, str]:
    """{method: 'mean ± std (n)'} DiffAUC ×100 of every method on ``name``; raises if the model is unavailable."""
    config_overrides, options = split_method_options(overrides)
    cfg = load_config(None, config_overrides + [f"model={name}"])
    model = load_model(name, cfg.weights)
    runner = ModelRunner(FastForward(model, cfg.device, cfg.precision, fold=cfg.fold_batchnorm), cfg.batch_size)
    evaluation = Evaluation(model, build_methods(methods, model, cfg, options, runner), out / safe_stem(name),
                            labels=labels, runner=runner, device=cfg.device)
    for i, result in enumerate(evaluation.run(images), start=1):
        print(f"{name} [{i}/{len(images)}] {result.error or Path(result.image).name}", file=sys.stderr)
    column = {}
    for method in methods:
        diff = np.array([r.diff for r in evaluation.rows() if r.method == method])
        std = diff.std(ddof=1) if diff.size > 1 else 0.0
        column[method] = f"{100 * diff.mean():.1f} ± {100 * std:.1f} ({diff.size})" if diff.size else "—"
    return column


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("items", nargs="+", metavar="IMAGES|key=value")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--labels", help="file,class_index CSV (default: each model's top-1 class)")
    parser.add_argument("--limit", type=int, help="first N images only")
    parser.add_argument("--out", default="decam-out/table1")
    args = parser.parse_args(argv)

    image_args, overrides = split_items(args.items)
    images = expand_images(image_args)[: args.limit]
    labels = read_labels(args.labels) if args.labels else None
    methods = [m for m in args.methods.split(",") if m]
    models = [m for m in args.models.split(",") if m]
    tune_allocator()
    out = Path(args.out)
    columns = {}
    for name in models:
        try:
            columns[name] = evaluate_model(name, images, methods, overrides, labels, out)
        except ModelUnavailableError as e:
            print(f"table1: {e}", file=sys.stderr)
            columns[name] = {m: "n/a" for m in methods}
        except DecamError as e:
            print(f"table1: error: {e}", file=sys.stderr)
            return e.exit_code
    lines = [
        f"DiffAUC ×100, mean ± std (images), on {len(images)} images of {', '.join(image_args)}; "
        f"decam overrides: {' '.join(overrides) or 'none (configs/default.yaml)'}.",
        "",
        "| method | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    lines += [f"| {m} | " + " | ".join(columns[name][m] for name in models) + " |" for m in methods]
    with atomic_open(out / "table1.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
