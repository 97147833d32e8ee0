"""Both kinds of evidence: does decam find a region that matters by its texture, and one that matters by
its flat colour? (decam.testing.EvidenceOracle, 64×64 image, region ≈ 8 %, default budget.)

    python experiments/oracles.py --seeds 3 --fills blur,mix,mean,black

Prints, per fill, the top-k precision (k = the region's area: the share of the map's k most salient
pixels that lie on the region; chance ≈ 0.08), mean over seeds, for the texture and the colour oracle.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fills", default="blur,mix,mean,black")
    args = parser.parse_args()

    import decam
    from decam.models import from_callable
    from decam.testing import EvidenceOracle, evidence_image, top_share

    print("| fill | texture | colour |\n|---|---|---|")
    for fill in args.fills.split(","):
        cells = []
        for kind in ("texture", "colour"):
            image = evidence_image(kind=kind)
            oracle = EvidenceOracle(image, kind=kind)
            model = from_callable(oracle, input_size=(64, 64))
            shares = [top_share(decam.explain(model, image, fill=fill, seed=s).saliency,
                                oracle.region_mask(64, 64)) for s in range(args.seeds)]
            cells.append(f"{np.mean(shares):.2f}")
        print(f"| {fill} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
