"""Which settings give bit-identical maps: EfficientNet-Lite0 on the embedded coffee photo, 20 generations × 32.

Usage: python experiments/determinism.py [--device cuda] [--out determinism.json]
       python experiments/determinism.py --device cuda --save a.npy   # then, in a fresh process:
       python experiments/determinism.py --device cuda --save b.npy --compare a.npy
Compares, on ``--device``: the same run twice, cudnn.benchmark, bf16, batch size 8 vs 64, another seed,
``torch.use_deterministic_algorithms``, and the CPU map for the same seed.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from decam.config import load_config
from decam.search.explainer import Explainer
from decam.io.images import default_image


def saliency(device: str, precision: str = "fp32", batch: int = 64, seed: int = 0, benchmark: bool = False):
    torch.backends.cudnn.benchmark = benchmark
    cfg = load_config(None, [f"device={device}", f"precision={precision}", f"batch_size={batch}", f"seed={seed}",
                             "generations=20", "searcher.popsize=32"])
    return Explainer(config=cfg).explain(default_image()[1]).saliency


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    return {"identical": bool(np.array_equal(a, b)), "max_abs_diff": float(np.abs(a - b).max()),
            "pixels_differing": float((a != b).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", help="write the comparisons as JSON")
    parser.add_argument("--save", help="only compute the fp32 and bf16 maps and save them (.npy)")
    parser.add_argument("--compare", help="with --save: compare with maps an earlier process saved")
    args = parser.parse_args()
    dev = args.device
    if args.save:
        maps = np.stack([saliency(dev, "fp32"), saliency(dev, "bf16")])
        np.save(args.save, maps)
        if args.compare:
            earlier = np.load(args.compare)
            for i, precision in enumerate(("fp32", "bf16")):
                print(f"fresh process, {dev} {precision}:", compare(earlier[i], maps[i]))
        return
    base = saliency(dev)
    results = {
        f"{dev} fp32 twice": compare(base, saliency(dev)),
        f"{dev} fp32 vs cudnn.benchmark": compare(base, saliency(dev, benchmark=True)),
        f"{dev} bf16 twice": compare(saliency(dev, "bf16"), saliency(dev, "bf16")),
        f"{dev} fp32 vs bf16": compare(base, saliency(dev, "bf16")),
        f"{dev} fp32 batch 64 vs 8": compare(base, saliency(dev, batch=8)),
        f"{dev} fp32 seed 0 vs 1": compare(base, saliency(dev, seed=1)),
    }
    if dev != "cpu":
        results[f"cpu fp32 vs {dev} fp32"] = compare(saliency("cpu"), base)
    torch.use_deterministic_algorithms(True)  # CUDA needs CUBLAS_WORKSPACE_CONFIG=:4096:8 for this
    results[f"{dev} fp32 deterministic algorithms vs default"] = compare(base, saliency(dev))
    print(json.dumps(results, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
