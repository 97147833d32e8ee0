"""What removed pixels become: a search's ``fill`` and the metrics' substrates, defined once.

Base layer: plain tensor functions on one image ``(3, H, W)`` in pixel space.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
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


def normalized_zero(image: torch.Tensor,
                    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None) -> torch.Tensor:
    """The pixel-space image that is 0 in the model's normalized input: its ``mean`` colour everywhere
    (RISE's fill and deletion value); black when the normalization is unknown (input = pixels)."""
    if normalization is None:
        return torch.zeros_like(image)
    mean = torch.as_tensor(normalization[0], dtype=image.dtype, device=image.device).view(-1, 1, 1)
    return mean.expand_as(image).clone()


# The metrics' substrates follow the RISE reference code (Petsiuk et al., 2018, ``CausalMetric``), which
# works on the *normalized* tensor ``(x - mean) / std``: deleted pixels become 0 there and insertion starts
# from a depthwise blur of it. decam's models take pixel-space input and normalize inside, so each substrate
# is that operation mapped back to pixel space.

SUBSTRATES = ("zero", "black", "blur", "mean")
REFERENCE_KERNEL, REFERENCE_SIGMA = 11, 5.0

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


def _stats(image: torch.Tensor, normalization: Normalization) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = (torch.tensor(v, dtype=image.dtype, device=image.device).view(-1, 1, 1) for v in normalization)
    return mean, std


def normalize(image: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """``(x - mean) / std`` per channel: what the model's network sees."""
    mean, std = _stats(image, normalization)
    return (image - mean) / std


def denormalize(image: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """The inverse of :func:`normalize`: a normalized tensor back in pixel space."""
    mean, std = _stats(image, normalization)
    return image * std + mean


@lru_cache(maxsize=4)
def reference_kernel(size: int = REFERENCE_KERNEL, sigma: float = REFERENCE_SIGMA) -> torch.Tensor:
    """RISE's ``gkern(size, sigma)``: ``scipy.ndimage.gaussian_filter`` of a ``size × size`` delta (mode
    'reflect', so flatter than a truncated normalized Gaussian), float32 ``(size, size)``."""
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0
    return torch.from_numpy(gaussian_filter(delta, sigma).astype(np.float32))


def reference_blur(image: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """RISE's insertion substrate in pixel space: ``denorm(blur(norm(x)))``, where ``blur`` is a depthwise
    ``conv2d`` with :func:`reference_kernel` and zero padding ``size // 2`` on the normalized tensor (so the
    border fades towards the mean colour, as in the reference)."""
    kernel = reference_kernel().to(image.device, image.dtype)
    weight = kernel.expand(image.shape[0], 1, *kernel.shape).contiguous()
    blurred = F.conv2d(normalize(image, normalization).unsqueeze(0), weight, padding=kernel.shape[-1] // 2,
                       groups=image.shape[0])[0]
    return denormalize(blurred, normalization)


def substrate(image: torch.Tensor, kind: str, normalization: Normalization) -> torch.Tensor:
    """A named metric substrate of ``image`` ``(3, H, W)`` in pixel space: ``zero`` (0 in the normalized
    input: the mean colour), ``black`` (pixel 0), ``blur`` (:func:`reference_blur`) or ``mean`` (the image's
    own mean colour)."""
    if kind == "zero":
        return normalized_zero(image, normalization)
    if kind == "blur":
        return reference_blur(image, normalization)
    if kind in ("black", "mean"):
        return fill_image(image, kind)
    raise ValueError(f"unknown substrate {kind!r}; expected one of {', '.join(SUBSTRATES)}")
