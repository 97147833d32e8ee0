"""What removed pixels become: a search's ``fill`` and the metrics' substrates, defined once.

Base layer: plain tensor functions on one image ``(3, H, W)`` in pixel space.
"""

from __future__ import annotations

import torch
import torchvision.transforms.functional as TF

FILLS = ("black", "mean", "blur", "mix")
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0


def blur(image: torch.Tensor) -> torch.Tensor:
    """Gaussian blur, kernel 11, σ=5 (RISE's insertion start)."""
    return TF.gaussian_blur(image.unsqueeze(0), kernel_size=[BLUR_KERNEL] * 2, sigma=[BLUR_SIGMA] * 2)[0]


def fill_image(image: torch.Tensor, kind: str) -> torch.Tensor:
    """What eliminated pixels become: ``black`` (zeros, the paper), per-channel ``mean``, ``blur``, or
    ``mix`` — ``(2, 3, H, W)``, blur for half the masks and the mean colour for the other half, so
    evidence that survives one (a flat colour survives a blur) does not survive both."""
    if kind == "mix":
        return torch.stack([blur(image), fill_image(image, "mean")])
    if kind == "black":
        return torch.zeros_like(image)
    if kind == "mean":
        return image.mean(dim=(-2, -1), keepdim=True).expand_as(image).clone()
    if kind == "blur":
        return blur(image)
    raise ValueError(f"unknown fill {kind!r}; expected one of {', '.join(FILLS)}")
