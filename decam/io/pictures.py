"""Pictures of saliency maps: a colour-mapped map and a heat map over the photo."""

from __future__ import annotations

import numpy as np
import torch


def colorize(saliency: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """``(H, W)`` in [0, 1] → ``(H, W, 3)`` uint8 through a matplotlib colormap."""
    from matplotlib import colormaps

    rgba = colormaps[cmap](np.clip(saliency, 0.0, 1.0))
    return (rgba[..., :3] * 255).astype(np.uint8)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Model input ``(3, H, W)`` in [0, 1] → ``(H, W, 3)`` uint8."""
    arr = image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    return (arr * 255).round().astype(np.uint8)


def overlay(image: torch.Tensor, saliency: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """Heat map blended over the photo, ``(H, W, 3)`` uint8."""
    photo = to_uint8(image).astype(np.float32)
    heat = colorize(saliency).astype(np.float32)
    return ((1 - strength) * photo + strength * heat).round().astype(np.uint8)
