"""The DE-CAM paper's encoding: a mask is the union of K filled, rotated ellipses."""

from __future__ import annotations

from typing import Annotated

import torch

from decam.encodings.base import Encoding
from decam.encodings.boxes import render_shapes
from decam.registry import ENCODINGS, Range


@ENCODINGS.register("ellipses")
class Ellipses(Encoding):
    """A mask is the union of K rotated ellipses, 5 genes each: bounding-box corners and rotation.

    Genes are ``[x0, y0, x1, y1, r]``, normalized corners and a rotation as a fraction of π.

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
        return render_shapes(genomes, self.K, self.height, self.width, self.min_side, self.max_side, _ellipse_span)


def _ellipse_span(c: torch.Tensor, s: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                  dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The row's run: roots in dx of (c·dx + s·dy)²/a² + (c·dy − s·dx)²/b² = 1."""
    ia2, ib2 = a.reciprocal().square(), b.reciprocal().square()
    qa = c * c * ia2 + s * s * ib2
    qb = dy * c * s * (ia2 - ib2)  # half the linear coefficient
    qc = dy * dy * (s * s * ia2 + c * c * ib2) - 1.0
    root = (qb * qb - qa * qc).clamp(min=-1.0)
    half = root.clamp(min=0.0).sqrt()
    missed = torch.where(root < 0, torch.inf, 0.0)
    return (-qb - half) / qa + missed, (-qb + half) / qa - missed
