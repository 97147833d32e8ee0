"""Geometry shared by the shape encodings: genes ``[x0, y0, x1, y1, r]`` → rotated boxes."""

from __future__ import annotations

import math

import torch


def box_geometry(
    genomes: torch.Tensor, K: int, height: int, width: int, min_side: float, max_side: float
) -> tuple[torch.Tensor, ...]:
    """Per-shape pixel offsets and half-sides for K boxes per genome, as in the DE-CAM paper.

    Genes are normalized image coordinates: ``(x0, y0)`` and ``(x1, y1)`` are opposite corners of
    the bounding box, ``r`` in [0, 1) is the rotation as a fraction of π (any real wraps around).
    Corners are clipped to the image and side lengths to ``[min_side, max_side]`` (fractions of
    the image side), which maps every real genome to a valid shape.

    Returns ``dx (N,K,1,W)``, ``dy (N,K,H,1)`` (pixel offsets from each box centre), ``cos``,
    ``sin`` and the half-sides ``a``, ``b`` in pixels, each ``(N,K,1,1)``.
    """
    g = genomes.reshape(genomes.shape[0], K, 5).clamp(-1e6, 1e6)
    x0, y0, x1, y1 = (g[..., i].clamp(0.0, 1.0) for i in range(4))
    w = (x1 - x0).abs().clamp(min_side, max_side) * width
    h = (y1 - y0).abs().clamp(min_side, max_side) * height
    cx, cy = (x0 + x1) * (0.5 * width), (y0 + y1) * (0.5 * height)
    theta = torch.remainder(g[..., 4], 1.0) * math.pi
    xs = torch.arange(width, device=g.device, dtype=g.dtype) + 0.5
    ys = torch.arange(height, device=g.device, dtype=g.dtype) + 0.5
    dx = xs.view(1, 1, 1, width) - cx[..., None, None]
    dy = ys.view(1, 1, height, 1) - cy[..., None, None]
    e = (..., None, None)
    return dx, dy, torch.cos(theta)[e], torch.sin(theta)[e], (w / 2)[e], (h / 2)[e]
