"""Per-image seconds at the paper's budget on one GPU, fp32 and bf16 (random weights are fine for timing).

Usage: python experiments/bench_gpu.py [--model torchvision:resnet50] [--images 3] [--out results.json]
Budget: configs/paper.yaml (N=64, 200 generations → 12,864 queries per image). Also times
``explain_many`` with 4 images per model batch (populations share batches of 256).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from decam.config import config_dir, load_config
from decam.search.explainer import Explainer


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run(model: str, precision: str, n_images: int, per_batch: int, device: str = "cuda", extra: tuple = ()) -> dict:
    cfg = load_config(config_dir() / "paper.yaml", [f"model={model}", "weights=random", f"device={device}",
                                                     f"precision={precision}", f"batch_size={64 * per_batch}", *extra])
    explainer = Explainer(config=cfg)
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, *explainer.model.input_size, generator=gen) for _ in range(n_images)]
    warm = load_config(config_dir() / "paper.yaml", [f"model={model}", "weights=random", f"device={device}",
                                                      f"precision={precision}", "generations=3"])
    Explainer(explainer.model, warm).explain(images[0])  # cuDNN autotune, allocator warm-up
    sync(device)
    start = time.perf_counter()
    if per_batch == 1:
        results = [explainer.explain(im) for im in images]
    else:
        results = [r for _, r in explainer.explain_many(images, images_per_batch=per_batch)]
    sync(device)
    seconds = (time.perf_counter() - start) / n_images
    timings = {k: sum(r.timings[k] for r in results) / n_images for k in results[0].timings}
    return {"model": model, "precision": precision, "images_per_batch": per_batch, "images": n_images,
            "queries_per_image": results[0].queries, "seconds_per_image": seconds,
            "queries_per_second": results[0].queries / seconds, "stage_seconds_per_image": timings}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="torchvision:resnet50")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--generations", type=int, default=None, help="override the paper's 200 (dry runs)")
    args = parser.parse_args()
    extra = () if args.generations is None else (f"generations={args.generations}",)
    print(torch.cuda.get_device_name() if args.device == "cuda" else args.device, torch.__version__)
    rows = []
    for precision in ("fp32", "bf16"):
        for per_batch in (1, 4):
            row = run(args.model, precision, args.images if per_batch == 1 else 4, per_batch, args.device, extra)
            rows.append(row)
            print(f"{row['model']} {precision:>4} images/batch {per_batch}: {row['seconds_per_image']:.2f} s/image, "
                  f"{row['queries_per_second']:.0f} queries/s, stages {json.dumps({k: round(v, 2) for k, v in row['stage_seconds_per_image'].items()})}",
                  flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
