"""A mask is a subset of the image's SLIC superpixels, one gene per segment."""

from __future__ import annotations

import math
import warnings
from typing import Annotated

import numpy as np
import torch

from decam.encodings.base import Encoding
from decam.errors import DecamWarning, SearchSpaceError
from decam.registry import ENCODINGS, Range

SMOOTHED = (1.0, 10.0)
"""The second SLIC try, for noisy or finely textured images: Gaussian sigma, compactness factor."""


@ENCODINGS.register("superpixels")
class Superpixels(Encoding):
    """A mask is a set of the image's SLIC superpixels, each kept when its gene exceeds ``threshold``.

    Real-valued searchers move genes freely; the hard threshold turns them into a binary choice,
    and drawing the first population from [0, 1] keeps about half the segments at the start.
    Segments come from scikit-image's SLIC, computed once in ``bind``. On noise or fine texture
    SLIC can merge the image into a handful of segments (one, on a 64 × 64 noise photo), which
    leaves nothing to search; ``bind`` therefore insists on at least half of ``n_segments`` (and
    two): SLIC as configured, then SLIC on a smoothed image with compact segments, then a regular
    grid — or a :class:`~decam.errors.SearchSpaceError` when even the grid cannot have that many.
    ``segmentation`` says which one was used.
    """

    def __init__(
        self,
        n_segments: Annotated[int, Range(2, 10000)] = 50,
        compactness: Annotated[float, Range(0.0, None, low_open=True)] = 10.0,
        threshold: float = 0.5,
    ) -> None:
        self.n_segments, self.compactness, self.threshold = n_segments, compactness, threshold
        self.segments: torch.Tensor | None = None
        self.segmentation: str | None = None

    @property
    def min_segments(self) -> int:
        """Fewest segments ``bind`` accepts: half of ``n_segments``, and at least two."""
        return max(2, math.ceil(self.n_segments / 2))

    def bind(self, image: torch.Tensor) -> Superpixels:
        super().bind(image)
        pixels = image.detach().float().cpu().permute(1, 2, 0).numpy()
        lo, hi = pixels.min(), pixels.max()
        pixels = (pixels - lo) / (hi - lo + 1e-12)  # SLIC wants a display-range image
        labels, self.segmentation = self._segment(pixels)
        _, labels = np.unique(labels, return_inverse=True)  # dense 0..S-1
        self.segments = torch.as_tensor(labels.reshape(self.height, self.width), device=image.device)
        return self

    def _segment(self, pixels: np.ndarray) -> tuple[np.ndarray, str]:
        """Labels with at least ``min_segments`` segments, and how they were made."""
        from skimage.segmentation import slic

        sigma, factor = SMOOTHED
        tries = [(0.0, self.compactness, "slic"),
                 (sigma, self.compactness * factor, f"slic (sigma {sigma:g}, compactness {self.compactness * factor:g})")]
        counts = []
        for s, compactness, how in tries:
            labels = slic(pixels, n_segments=self.n_segments, compactness=compactness, sigma=s, start_label=0)
            counts.append(len(np.unique(labels)))
            if counts[-1] >= self.min_segments:
                if how != "slic":
                    self._note(f"SLIC gave {counts[0]} segment(s) of the {self.n_segments} asked for; "
                               f"used {how}: {counts[-1]} segments")
                return labels, how
        labels = grid_segments(self.height, self.width, self.n_segments)
        found = int(labels.max()) + 1
        if found < self.min_segments:
            raise SearchSpaceError(
                f"encoding=superpixels: a {self.width}x{self.height} model input holds at most {found} segments, "
                f"fewer than half of encoding.n_segments={self.n_segments}; ask for at most {2 * found} segments")
        self._note(f"SLIC gave {max(counts)} segment(s) of the {self.n_segments} asked for on this image "
                   f"(noise or fine texture); used a regular grid of {found} cells instead")
        return labels, "grid"

    @staticmethod
    def _note(message: str) -> None:
        warnings.warn(f"encoding=superpixels: {message}", DecamWarning, stacklevel=3)

    @property
    def genome_length(self) -> int:
        if self.segments is None:
            raise RuntimeError("Superpixels.bind(image) must be called before genome_length")
        return int(self.segments.max()) + 1

    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        keep = (genomes > self.threshold).to(genomes.dtype)  # (N, S)
        return keep[:, self.segments.to(genomes.device)]  # (N, H, W)


def grid_segments(height: int, width: int, n: int) -> np.ndarray:
    """Labels ``(height, width)`` of a regular grid of about ``n`` cells shaped like the image
    (fewer when the image has fewer pixels than that)."""
    rows = min(height, max(1, round(math.sqrt(n * height / width))))
    cols = min(width, max(1, math.ceil(n / rows)))
    r = np.arange(height) * rows // height
    c = np.arange(width) * cols // width
    return r[:, None] * cols + c[None, :]
