"""What removed pixels become: a search's ``fill`` and the metrics' substrates, defined once.

Base layer: plain tensor functions on one image ``(3, H, W)`` in pixel space.
"""

from __future__ import annotations

import torch
import torchvision.transforms.functional as TF

FILLS = ("black", "mean", "blur")
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0


def blur(image: torch.Tensor) -> torch.Tensor:
    """Gaussian blur, kernel 11, σ=5 (RISE's insertion start)."""
    return TF.gaussian_blur(image.unsqueeze(0), kernel_size=[BLUR_KERNEL] * 2, sigma=[BLUR_SIGMA] * 2)[0]


def fill_image(image: torch.Tensor, kind: str) -> torch.Tensor:
    """What eliminated pixels become: ``black`` (zeros, the paper), per-channel ``mean``, or ``blur``."""
    if kind == "black":
        return torch.zeros_like(image)
    if kind == "mean":
        return image.mean(dim=(-2, -1), keepdim=True).expand_as(image).clone()
    if kind == "blur":
        return blur(image)
    raise ValueError(f"unknown fill {kind!r}; expected one of {', '.join(FILLS)}")


def normalized_zero(image: torch.Tensor,
                    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None) -> torch.Tensor:
    """The pixel-space image that is 0 in the model's normalized input: its ``mean`` colour everywhere
    (RISE's fill and deletion value); black when the normalization is unknown (input = pixels)."""
    if normalization is None:
        return torch.zeros_like(image)
    mean = torch.as_tensor(normalization[0], dtype=image.dtype, device=image.device).view(-1, 1, 1)
    return mean.expand_as(image).clone()
