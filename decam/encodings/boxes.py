"""Rendering shared by the shape encodings: genes ``[x0, y0, x1, y1, r]`` → rotated convex shapes.

A convex shape covers one run of pixels per image row. Each shape gives the run's ends for every
row (a few numbers, not a pixel test), the runs are written into a difference array, and one
cumulative sum over each row turns them into the masks: the cost no longer grows with the shapes'
area, which is what made large ellipses expensive to render.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Span = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
                tuple[torch.Tensor, torch.Tensor]]
"""``span(cos, sin, a, b, dy) -> (lo, hi)``: the shape (centred at 0, half-sides ``a`` along its own
x axis and ``b`` along its y axis, turned by the angle with that cos and sin) covers the horizontal
offsets ``lo <= dx <= hi`` at vertical offset ``dy``; ``lo > hi`` where it misses the row. All
tensors broadcast to ``(N, K, H)``."""


def render_shapes(
    genomes: torch.Tensor,
    K: int,
    height: int,
    width: int,
    min_side: float,
    max_side: float,
    span: Span,
) -> torch.Tensor:
    """Masks ``(N, H, W)``: the union of K rotated shapes per genome, as in the DE-CAM paper.

    Genes are normalized image coordinates: ``(x0, y0)`` and ``(x1, y1)`` are opposite corners of
    the bounding box, ``r`` is the rotation as a fraction of π (any real wraps around). Corners are
    clipped to the image and side lengths to ``[min_side, max_side]``, so every real genome is valid.
    A pixel belongs to a shape when its centre does.
    """
    n, device = genomes.shape[0], genomes.device
    g = genomes.reshape(n, K, 5).clamp(-1e6, 1e6)
    x0, y0, x1, y1 = (g[..., i].clamp(0.0, 1.0) for i in range(4))
    a = (x1 - x0).abs().clamp(min_side, max_side) * (width / 2)
    b = (y1 - y0).abs().clamp(min_side, max_side) * (height / 2)
    cx, cy = (x0 + x1) * (width / 2), (y0 + y1) * (height / 2)
    theta = torch.remainder(g[..., 4], 1.0) * math.pi

    rows = torch.arange(height, device=device, dtype=g.dtype) + 0.5
    dy = rows - cy[..., None]  # (N, K, H)
    c, s = torch.cos(theta)[..., None], torch.sin(theta)[..., None]
    lo, hi = span(c, s, a[..., None], b[..., None], dy)
    # pixel columns whose centres j + 0.5 lie in [cx + lo, cx + hi], clipped to the image
    first = (cx[..., None] + lo.clamp(-2 * width, 2 * width) - 0.5).ceil().clamp(0, width)
    last = (cx[..., None] + hi.clamp(-2 * width, 2 * width) - 0.5).floor().clamp(-1, width - 1) + 1
    hit = (first < last).to(g.dtype)

    # +1 where each run starts, -1 just after it ends; a running sum along the row counts the runs
    row_base = (torch.arange(n, device=device)[:, None, None] * height + torch.arange(height, device=device)) * (width + 1)
    diff = torch.zeros(n * height * (width + 1), dtype=g.dtype, device=device)
    diff.scatter_add_(0, (row_base + first.long()).flatten(), hit.flatten())
    diff.scatter_add_(0, (row_base + last.long()).flatten(), -hit.flatten())
    counts = diff.view(n, height, width + 1)[..., :width].cumsum(-1)
    return (counts > 0.5).to(genomes.dtype)
