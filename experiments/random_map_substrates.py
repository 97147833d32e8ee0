"""DiffAUC of a random map under the RISE reference substrates and under pixel-black deletion.

A map that knows nothing should score about the same as no map; how far above 0 a random map lands
measures what the substrates themselves add. Prints one line per photo and the means with their
standard errors (×100).

    python experiments/random_map_substrates.py ../shared/data/imagenet-dev --limit 12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="folder with the photos and labels.csv (file,class_index)")
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--model", default="efficientnet_lite0")
    args = parser.parse_args()

    from decam.evaluation.metrics import insertion_deletion
    from decam.evaluation.scoring import read_labels
    from decam.io.images import open_image, to_input
    from decam.models import FastForward, ModelRunner, load_model

    labels = read_labels(args.photos / "labels.csv")
    model = load_model(args.model, None)
    runner = ModelRunner(FastForward(model, "cpu", "fp32"), 64)
    diffs: dict[str, list[float]] = {"zero": [], "black": []}
    for path in sorted(p for p in args.photos.iterdir() if p.name in labels)[: args.limit]:
        x = to_input(open_image(path), model.input_size, model.resize)
        sal = np.random.default_rng(0).random(x.shape[-2:]).astype(np.float32)
        line = [path.name]
        for deletion, out in diffs.items():
            s = insertion_deletion(runner, x, sal, labels[path.name], normalization=model.normalization,
                                   deletion=deletion)
            out.append(s.diff)
            line.append(f"deletion to {deletion}: DiffAUC {100 * s.diff:.1f} (deletion {100 * s.deletion:.1f})")
        print("  ".join(line), flush=True)
    for deletion, out in diffs.items():
        d = np.array(out)
        print(f"deletion to {deletion}: {100 * d.mean():.1f} ± {100 * d.std(ddof=1) / np.sqrt(d.size):.1f} (s.e.), "
              f"{d.size} photos")


if __name__ == "__main__":
    main()
