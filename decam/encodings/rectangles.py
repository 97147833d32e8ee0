"""A mask is the union of K filled, rotated rectangles (an ablation of the paper's ellipses)."""

from __future__ import annotations

from typing import Annotated

import torch

from decam.encodings.base import Encoding
from decam.encodings.boxes import render_shapes
from decam.registry import ENCODINGS, Range


@ENCODINGS.register("rectangles")
class Rectangles(Encoding):
    """A mask is the union of K rectangles, with the genes and size limits of ``ellipses``.

    ``rotate=False`` ignores the rotation gene and keeps the rectangles axis-aligned.
    """

    def __init__(
        self,
        K: Annotated[int, Range(1, 1000)] = 10,
        min_side: Annotated[float, Range(0.0, 1.0, low_open=True)] = 1 / 20,
        max_side: Annotated[float, Range(0.0, 1.0, low_open=True)] = 1 / 4,
        rotate: bool = True,
    ) -> None:
        if min_side > max_side:
            raise ValueError(f"encoding.min_side={min_side} must be <= encoding.max_side={max_side}")
        self.K, self.min_side, self.max_side, self.rotate = K, min_side, max_side, rotate

    @property
    def genome_length(self) -> int:
        return 5 * self.K

    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        if not self.rotate:
            genomes = genomes.reshape(genomes.shape[0], self.K, 5).clone()
            genomes[..., 4] = 0.0
        return render_shapes(genomes, self.K, self.height, self.width, self.min_side, self.max_side, _rectangle_span)


def _rectangle_span(c: torch.Tensor, s: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                     dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The row's run: the dx with |c·dx + s·dy| <= a and |c·dy − s·dx| <= b (two slabs)."""
    lo1, hi1 = _slab(c, -s * dy, a)
    lo2, hi2 = _slab(-s, -c * dy, b)
    return torch.maximum(lo1, lo2), torch.minimum(hi1, hi2)


def _slab(k: torch.Tensor, offset: torch.Tensor, half: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """dx with |k·dx − offset| <= half; a vanishing k gives all or nothing (huge bounds either way)."""
    k = torch.where(k.abs() < 1e-9, 1e-9, k)
    p, q = (offset - half) / k, (offset + half) / k
    return torch.minimum(p, q), torch.maximum(p, q)
