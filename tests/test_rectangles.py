"""The rectangle encoding renders the rotated boxes its genes describe."""

from __future__ import annotations

import math

import torch

from decam.encodings.rectangles import Rectangles


def slow_reference(genome: torch.Tensor, K: int, H: int, W: int, lo: float, hi: float) -> torch.Tensor:
    """Pixel-by-pixel loop: a pixel is in when its centre is within both half-sides of a box."""
    out = torch.zeros(H, W)
    for k in range(K):
        x0, y0, x1, y1, r = genome[5 * k: 5 * k + 5].tolist()
        x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in (x0, y0, x1, y1))
        w = min(max(abs(x1 - x0), lo), hi) * W
        h = min(max(abs(y1 - y0), lo), hi) * H
        cx, cy, th = (x0 + x1) / 2 * W, (y0 + y1) / 2 * H, (r % 1.0) * math.pi
        for i in range(H):
            for j in range(W):
                dx, dy = j + 0.5 - cx, i + 0.5 - cy
                u = dx * math.cos(th) + dy * math.sin(th)
                v = -dx * math.sin(th) + dy * math.cos(th)
                if abs(u) <= w / 2 + 1e-5 and abs(v) <= h / 2 + 1e-5:
                    out[i, j] = 1.0
    return out


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
