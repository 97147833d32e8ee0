"""The README's two-object picture: one composite of ``two_objects.py`` and each class's map from ONE search.

    python experiments/two_objects_figure.py --pair 0 --out docs/two_objects.png

Writes ``composite | map of the left photo's class | map of the right photo's class`` (overlays) as one PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_photos import DEFAULT_FOLDER, labels, split  # noqa: E402
from two_objects import composite  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=str(DEFAULT_FOLDER))
    parser.add_argument("--pair", type=int, default=0, help="which pair of two_objects.py (default 0)")
    parser.add_argument("--out", default="two_objects.png")
    parser.add_argument("overrides", nargs="*", help="decam config keys, key=value")
    args = parser.parse_args()

    from decam.config import load_config
    from decam.io.files import save_png
    from decam.io.images import open_image
    from decam.io.pictures import overlay, to_uint8
    from decam.search.explainer import Explainer

    _, report = split(args.photos)
    label, half = labels(args.photos), len(report) // 2
    a, b = report[args.pair], report[args.pair + half]
    explainer = Explainer(config=load_config(None, args.overrides))
    x = composite(open_image(a), open_image(b), explainer.model.input_size[0])
    exp = explainer.explain(x, [label[a.name], label[b.name]])
    panels = [to_uint8(x)]
    panels += [overlay(x, t.saliency) for t in exp.targets]
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    save_png(args.out, np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1))
    names = ", ".join(f"{t.class_name} ({t.target})" for t in exp.targets)
    print(f"{args.out}: {a.name} | {b.name}; maps of {names} from one search of {exp.queries} queries")


if __name__ == "__main__":
    main()
