"""A mask is a subset of the image's SLIC superpixels, one gene per segment."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch

from decam.encodings.base import Encoding
from decam.registry import ENCODINGS, Range


@ENCODINGS.register("superpixels")
class Superpixels(Encoding):
    """A mask is a set of the image's SLIC superpixels, each kept when its gene exceeds ``threshold``.

    Real-valued searchers move genes freely; the hard threshold turns them into a binary choice,
    and drawing the first population from [0, 1] keeps about half the segments at the start.
    Segments come from scikit-image's SLIC, computed once in ``bind``.
    """

    def __init__(
        self,
        n_segments: Annotated[int, Range(2, 10000)] = 50,
        compactness: Annotated[float, Range(0.0, None, low_open=True)] = 10.0,
        threshold: float = 0.5,
    ) -> None:
        self.n_segments, self.compactness, self.threshold = n_segments, compactness, threshold
        self.segments: torch.Tensor | None = None

    def bind(self, image: torch.Tensor) -> Superpixels:
        from skimage.segmentation import slic

        super().bind(image)
        pixels = image.detach().float().cpu().permute(1, 2, 0).numpy()
        lo, hi = pixels.min(), pixels.max()
        pixels = (pixels - lo) / (hi - lo + 1e-12)  # SLIC wants a display-range image
        labels = slic(pixels, n_segments=self.n_segments, compactness=self.compactness, start_label=0)
        _, labels = np.unique(labels, return_inverse=True)  # dense 0..S-1
        self.segments = torch.as_tensor(labels.reshape(self.height, self.width), device=image.device)
        return self

    @property
    def genome_length(self) -> int:
        if self.segments is None:
            raise RuntimeError("Superpixels.bind(image) must be called before genome_length")
        return int(self.segments.max()) + 1

    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        keep = (genomes > self.threshold).to(genomes.dtype)  # (N, S)
        return keep[:, self.segments.to(genomes.device)]  # (N, H, W)
