"""The rectangle encoding renders the rotated boxes its genes describe."""

from __future__ import annotations

import torch

from decam.encodings.rectangles import Rectangles
from reference_shapes import slow_render


def slow_reference(genome: torch.Tensor, K: int, H: int, W: int, lo: float, hi: float) -> torch.Tensor:
    return slow_render(genome, K, H, W, lo, hi, lambda u, v, a, b: abs(u) <= a + 1e-5 and abs(v) <= b + 1e-5)


def test_rotated_rectangles_match_slow_reference():
    gen = torch.Generator().manual_seed(5)
    enc = Rectangles(K=3, max_side=0.5).bind(torch.zeros(3, 24, 32))
    genomes = torch.rand(4, 15, generator=gen) * 1.4 - 0.2
    genomes[0, 4::5] = 0.0  # axis-aligned boxes: the slab with a vanishing coefficient
    genomes[1, 4::5] = 0.5  # a quarter turn
    fast = enc.render(genomes)
    for n in range(4):
        ref = slow_reference(genomes[n], 3, 24, 32, 1 / 20, 0.5)
        assert (fast[n] != ref).sum() <= 2  # at most boundary pixels differ by rounding


def test_axis_aligned_box_covers_exactly_its_pixels():
    enc = Rectangles(K=1, rotate=False).bind(torch.zeros(3, 40, 40))
    mask = enc.render(torch.tensor([[0.25, 0.5, 0.45, 0.6, 0.3]]))[0]  # x 10..18, y 20..24 in pixels
    expected = torch.zeros(40, 40)
    expected[20:24, 10:18] = 1.0
    assert torch.equal(mask, expected)
