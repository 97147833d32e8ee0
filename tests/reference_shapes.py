"""Pixel-by-pixel loop over the paper's shape genes, to check the vectorized renderers against."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def slow_render(genome: torch.Tensor, K: int, H: int, W: int, lo: float, hi: float,
                inside: Callable[[float, float, float, float], bool]) -> torch.Tensor:
    """``inside(u, v, half_w, half_h)``: whether a pixel centre at offsets (u, v) along the shape's
    own axes lies in a shape with those half-sides."""
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
                if inside(u, v, w / 2, h / 2):
                    out[i, j] = 1.0
    return out
