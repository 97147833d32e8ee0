"""The DE-CAM paper's encoding: a mask is the union of K filled, rotated ellipses."""

from __future__ import annotations

from typing import Annotated

import torch

from decam.encodings.base import Encoding
from decam.encodings.boxes import box_geometry
from decam.registry import ENCODINGS, Range


@ENCODINGS.register("ellipses")
class Ellipses(Encoding):
    """K ellipses, 5 genes each ``[x0, y0, x1, y1, r]``: bounding-box corners and rotation.

    Box sides are limited to ``[min_side, max_side]`` of the image side (paper: H/20 and H/4).
    """

    def __init__(
        self,
        K: Annotated[int, Range(1, 1000)] = 10,
        min_side: Annotated[float, Range(0.0, 1.0, low_open=True)] = 1 / 20,
        max_side: Annotated[float, Range(0.0, 1.0, low_open=True)] = 1 / 4,
    ) -> None:
        if min_side > max_side:
            raise ValueError(f"encoding.min_side={min_side} must be <= encoding.max_side={max_side}")
        self.K, self.min_side, self.max_side = K, min_side, max_side

    @property
    def genome_length(self) -> int:
        return 5 * self.K

    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        dx, dy, c, s, a, b = box_geometry(genomes, self.K, self.height, self.width, self.min_side, self.max_side)
        # (u/a)^2 + (v/b)^2 with u, v the rotated offsets, expanded as A dx^2 + B dx dy + C dy^2
        ia2, ib2 = a.pow(-2), b.pow(-2)
        A = c * c * ia2 + s * s * ib2
        B = 2 * c * s * (ia2 - ib2)
        C = s * s * ia2 + c * c * ib2
        q = torch.addcmul(A * dx * dx + C * dy * dy, B * dx, dy)
        return (q <= 1.0).any(dim=1).to(genomes.dtype)
