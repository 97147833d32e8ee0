"""Rendering shared by the shape encodings: genes ``[x0, y0, x1, y1, r]`` → rotated shapes.

Each shape is evaluated only inside a small window around its centre (a shape's side is at most
``max_side`` of the image), then the windows are OR-ed into the masks with one scatter — about
8× less work than testing every pixel against every shape at the paper's limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Inside = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``inside(u, v)``: which pixels lie in the shape, given their offsets from its centre along its
own axes in units of its half-sides (``(N, K, Sy, Sx)`` each; the box is ``|u|, |v| <= 1``)."""


def render_shapes(
    genomes: torch.Tensor,
    K: int,
    height: int,
    width: int,
    min_side: float,
    max_side: float,
    inside: Inside,
) -> torch.Tensor:
    """Masks ``(N, H, W)``: the union of K rotated shapes per genome, as in the DE-CAM paper.

    Genes are normalized image coordinates: ``(x0, y0)`` and ``(x1, y1)`` are opposite corners of
    the bounding box, ``r`` is the rotation as a fraction of π (any real wraps around). Corners are
    clipped to the image and side lengths to ``[min_side, max_side]``, so every real genome is valid.
    """
    n = genomes.shape[0]
    g = genomes.reshape(n, K, 5).clamp(-1e6, 1e6)
    x0, y0, x1, y1 = (g[..., i].clamp(0.0, 1.0) for i in range(4))
    a = (x1 - x0).abs().clamp(min_side, max_side) * (width / 2)
    b = (y1 - y0).abs().clamp(min_side, max_side) * (height / 2)
    cx, cy = (x0 + x1) * (width / 2), (y0 + y1) * (height / 2)
    theta = torch.remainder(g[..., 4], 1.0) * math.pi

    # window half-size covering any rotation of the largest allowed shape, capped at the image
    reach = math.ceil(math.hypot(max_side * width, max_side * height) / 2) + 1
    sx, sy = min(2 * reach, width), min(2 * reach, height)
    ox = (cx.floor().long() - reach).clamp(0, width - sx)  # (N, K) window origins inside the image
    oy = (cy.floor().long() - reach).clamp(0, height - sy)
    jx = torch.arange(sx, device=g.device)
    iy = torch.arange(sy, device=g.device)
    px = (ox[..., None] + jx).to(g.dtype) + 0.5  # (N, K, Sx) pixel-centre x
    py = (oy[..., None] + iy).to(g.dtype) + 0.5  # (N, K, Sy)
    dx = (px - cx[..., None]).unsqueeze(-2)  # (N, K, 1, Sx)
    dy = (py - cy[..., None]).unsqueeze(-1)  # (N, K, Sy, 1)
    c, s = torch.cos(theta)[..., None, None], torch.sin(theta)[..., None, None]
    ia, ib = 1.0 / a[..., None, None], 1.0 / b[..., None, None]
    u = torch.addcmul(c * ia * dx, s * ia, dy)  # rotated offsets, in half-sides
    v = torch.addcmul(c * ib * dy, -s * ib, dx)
    hit = inside(u, v)  # (N, K, Sy, Sx) bool

    # flat index of every window pixel in the (N, H, W) output; overlapping hits add up, then > 0
    row = (oy[..., None] + iy).unsqueeze(-1) * width  # (N, K, Sy, 1)
    col = (ox[..., None] + jx).unsqueeze(-2)  # (N, K, 1, Sx)
    base = (torch.arange(n, device=g.device) * (height * width)).view(n, 1, 1, 1)
    flat = (base + row + col).flatten()
    counts = torch.zeros(n * height * width, dtype=genomes.dtype, device=g.device)
    counts.scatter_add_(0, flat, hit.flatten().to(genomes.dtype))
    return (counts > 0).to(genomes.dtype).view(n, height, width)
