"""Insertion / deletion AUC and DiffAUC (RISE: Petsiuk et al., 2018) with named substrates.

Pixels are ranked by saliency, most salient first (ties broken by position, deterministically).
*Deletion* starts from the image and moves ``step`` pixels per step to the deletion substrate;
*insertion* starts from the insertion substrate and restores ``step`` pixels per step. ``step`` is 224
pixels at 224×224 and scales with the image area (⌈H·W/224⌉ pixels), so every curve has 224 steps plus
its start. Each curve is the softmax probability of the target class; its AUC is
``(sum − first/2 − last/2) / (n − 1)`` (the trapezoid rule on [0, 1], RISE's ``auc``).
``DiffAUC = insertion − deletion``; reports multiply all three by 100.

The default substrates are the RISE reference code's (``CausalMetric`` in ``evaluation.py`` of the RISE
authors' repository), which works on the *normalized* tensor: deletion sets pixels to 0 there (the
normalization's mean colour, ``zero``), insertion starts from a depthwise blur of it with
``gkern(11, 5)`` and zero padding (``blur``; :func:`decam.substrates.reference_blur`). ``black`` (pixel
0) and ``mean`` (the image's own mean colour) are the alternatives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from decam.models import IMAGENET_MEAN, IMAGENET_STD
from decam.substrates import SUBSTRATES, Normalization, substrate

N_STEPS = 224
REFERENCE_INSERTION, REFERENCE_DELETION = "blur", "zero"
DEFAULT_NORMALIZATION: Normalization = (IMAGENET_MEAN, IMAGENET_STD)
"""What the substrates assume for a model whose normalization is unknown (a bare callable): ImageNet's
mean and std, the normalization of the RISE reference code itself."""

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class CurveScores:
    """Both curves of one map and their AUCs, with the substrates they moved pixels to and from."""

    insertion: float
    deletion: float
    insertion_curve: np.ndarray
    deletion_curve: np.ndarray
    insertion_substrate: str = REFERENCE_INSERTION
    deletion_substrate: str = REFERENCE_DELETION

    @property
    def diff(self) -> float:
        return self.insertion - self.deletion


def auc(curve: np.ndarray | torch.Tensor) -> float:
    """Trapezoid-rule area under ``curve`` sampled at evenly spaced x in [0, 1]."""
    c = np.asarray(curve, dtype=np.float64)
    if c.size < 2:
        return float(c.mean()) if c.size else float("nan")
    return float((c.sum() - (c[0] + c[-1]) / 2) / (c.size - 1))


def step_size(height: int, width: int, n_steps: int = N_STEPS) -> int:
    """Pixels changed per step: 224 at 224×224, scaled with the area otherwise."""
    return max(1, math.ceil(height * width / n_steps))


def resolve_normalization(normalization: Normalization | None) -> Normalization:
    """The model's ``(mean, std)``, or :data:`DEFAULT_NORMALIZATION` when it is not known."""
    return DEFAULT_NORMALIZATION if normalization is None else normalization


def check_map(saliency: np.ndarray | torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``saliency`` as a float32 tensor on the image's device; ValueError if it is the wrong shape or not finite."""
    sal = torch.as_tensor(np.asarray(saliency, dtype=np.float32), device=image.device)
    if sal.shape != image.shape[-2:]:
        raise ValueError(f"saliency map {tuple(sal.shape)} does not match the image {tuple(image.shape[-2:])}")
    if not torch.isfinite(sal).all():
        raise ValueError("saliency map contains NaN or infinite values")
    return sal


def salient_order(saliency: torch.Tensor) -> torch.Tensor:
    """Flat pixel indices, most salient first; ties in position order."""
    return torch.argsort(saliency.flatten(), descending=True, stable=True)


def _curve(forward: Forward, start: torch.Tensor, finish: torch.Tensor, order: torch.Tensor, step: int,
           target: int, batch_size: int) -> np.ndarray:
    """Probabilities along the path that moves pixels ``order`` from ``start`` to ``finish``."""
    c, h, w = start.shape
    n = order.numel()
    n_points = math.ceil(n / step) + 1
    rank = torch.empty(n, dtype=torch.long, device=order.device)
    rank[order] = torch.arange(n, device=order.device)
    rank = rank.view(1, 1, h, w)
    probs = []
    with torch.inference_mode():
        for first in range(0, n_points, batch_size):
            k = torch.arange(first, min(first + batch_size, n_points), device=start.device).view(-1, 1, 1, 1)
            moved = rank < k * step  # (B, 1, H, W): pixels already switched at point k
            x = torch.where(moved, finish.unsqueeze(0), start.unsqueeze(0))
            probs.append(forward(x).float().softmax(-1)[:, target])
    return torch.cat(probs).cpu().numpy()


def insertion_deletion(
    forward: Forward,
    image: torch.Tensor,
    saliency: np.ndarray | torch.Tensor,
    target: int,
    *,
    normalization: Normalization | None = None,
    insertion: str = REFERENCE_INSERTION,
    deletion: str = REFERENCE_DELETION,
    n_steps: int = N_STEPS,
    batch_size: int = 64,
) -> CurveScores:
    """Insertion and deletion AUC of ``saliency`` ``(H, W)`` for ``target`` on ``image`` ``(3, H, W)`` in
    pixel space.

    ``forward`` maps a pixel-space batch to logits: a :class:`~decam.models.ModelRunner` over the shared
    fast path, so the metric runs at the precision and speed of the methods it scores.
    ``normalization``: the model's ``(mean, std)`` (``LoadedModel.normalization``), which places the
    ``zero`` and ``blur`` substrates; None assumes :data:`DEFAULT_NORMALIZATION`. ``insertion`` /
    ``deletion``: substrate names from :data:`decam.substrates.SUBSTRATES` (default: the RISE reference).
    """
    for kind in (insertion, deletion):
        if kind not in SUBSTRATES:
            raise ValueError(f"unknown substrate {kind!r}; expected one of {', '.join(SUBSTRATES)}")
    sal = check_map(saliency, image)
    order = salient_order(sal)
    step = step_size(*sal.shape, n_steps=n_steps)
    norm = resolve_normalization(normalization)
    deleted = _curve(forward, image, substrate(image, deletion, norm), order, step, target, batch_size)
    inserted = _curve(forward, substrate(image, insertion, norm), image, order, step, target, batch_size)
    return CurveScores(auc(inserted), auc(deleted), inserted, deleted, insertion, deletion)
