"""Seconds and queries/s of each black-box anchor at one query budget, against the model alone.

One real photo (scikit-image's ``coffee``) through EfficientNet-Lite0 and the shared fast forward
(``FastForward`` + ``ModelRunner``, batch 64). Each method first runs at a budget of 128 to warm up
(``warmup_s``: imports, numba JIT), then ``--rounds`` times at the budget, keeping its best round;
``raw`` is the runner on a fixed batch, measured right before each method (a shared machine's load
drifts); ``forward_s`` is the time the method's queries spent in the runner and ``overhead_s`` =
seconds − forward_s: the method's own work (building perturbations, its library's bookkeeping, the
estimator), measured under the same load as its forward passes.

Usage: python experiments/bench_anchors.py [--budget 1633] [--device cpu] [--rounds 1] [--methods rise,sobol]
"""

from __future__ import annotations

import argparse
import json
import time

ANCHORS = {
    "rise": ("rise", {}),
    "rise_blur": ("rise", {"fill": "blur"}),
    "sobol": ("sobol", {}),
    "hsic": ("hsic", {}),
    "shap": ("shap", {}),
    "kernelshap": ("kernelshap", {}),
    "lime": ("lime", {}),
    "occlusion": ("occlusion", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=1633)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--methods", default=",".join(ANCHORS))
    args = parser.parse_args()

    import torch

    from decam.evaluation.methods import create_method
    from decam.io.images import default_image, to_input
    from decam.models import FastForward, ModelRunner, load_model

    model = load_model("efficientnet_lite0")
    forward = FastForward(model, args.device, "auto")
    runner = ModelRunner(forward, args.batch_size)

    class TimedRunner(ModelRunner):
        """The same runner, adding up the seconds spent inside it."""

        spent = 0.0

        def __call__(self, batch: torch.Tensor) -> torch.Tensor:
            start = time.perf_counter()
            out = super().__call__(batch)
            self.spent += time.perf_counter() - start
            return out

    x = to_input(default_image()[1], model.input_size, model.resize).to(args.device)
    target = int(runner(x[None]).argmax())
    gen = torch.Generator().manual_seed(0)
    batch = torch.rand(args.batch_size, 3, *model.input_size, generator=gen).to(args.device)
    runner(batch)

    def raw_speed() -> float:
        start = time.perf_counter()
        for _ in range(2):
            runner(batch)
        return 2 * args.batch_size / (time.perf_counter() - start)

    out = {"device": args.device, "precision": forward.precision, "threads": torch.get_num_threads(),
           "budget": args.budget, "methods": {}}
    for label in args.methods.split(","):
        name, params = ANCHORS[label]
        start = time.perf_counter()
        create_method(name, model, runner, budget=128, **params)(x, target)
        warmup = time.perf_counter() - start
        method = create_method(name, model, runner, budget=args.budget, **params)
        method.runner = timed = TimedRunner(forward, args.batch_size)
        raw, best, in_forward = raw_speed(), float("inf"), 0.0
        for _ in range(args.rounds):
            timed.spent = 0.0
            start = time.perf_counter()
            method(x, target)
            if time.perf_counter() - start < best:
                best, in_forward = time.perf_counter() - start, timed.spent
        q = method.queries
        out["methods"][label] = {"queries": q, "seconds": round(best, 2), "queries_per_s": round(q / best, 1),
                                 "raw_img_per_s": round(raw, 1), "forward_s": round(in_forward, 2),
                                 "overhead_s": round(best - in_forward, 2),
                                 "overhead_pct": round(100 * (best - in_forward) / in_forward, 1),
                                 "warmup_s": round(warmup, 2)}
        print(label, out["methods"][label], flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
