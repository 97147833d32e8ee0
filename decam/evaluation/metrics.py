"""Insertion / deletion AUC and DiffAUC, following RISE (Petsiuk et al., 2018).

Pixels are ranked by saliency, most salient first (ties broken by position, deterministically).
*Deletion* starts from the image and sets ``step`` pixels per step to 0 **in pixel space** (black,
the same "eliminated" value as decam's default fill); *insertion* starts from a Gaussian-blurred
copy (kernel 11, σ=5) and restores ``step`` pixels per step. ``step`` is 224 pixels at 224×224 and
scales with the image area (H·W/224 pixels), so every curve has 224 steps plus its start. Each curve
is the softmax probability of the target class; its AUC is the trapezoid rule normalized to [0, 1].
``DiffAUC = insertion − deletion``; reports multiply all three by 100, like the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from decam.substrates import blur

N_STEPS = 224


@dataclass
class CurveScores:
    insertion: float
    deletion: float
    insertion_curve: np.ndarray
    deletion_curve: np.ndarray

    @property
    def diff(self) -> float:
        return self.insertion - self.deletion


def auc(curve: np.ndarray | torch.Tensor) -> float:
    """Trapezoid-rule area under ``curve`` sampled at evenly spaced x in [0, 1]."""
    c = np.asarray(curve, dtype=np.float64)
    if c.size < 2:
        return float(c.mean()) if c.size else float("nan")
    return float((c.sum() - (c[0] + c[-1]) / 2) / (c.size - 1))


def blur_substrate(image: torch.Tensor) -> torch.Tensor:
    """Insertion's starting image: Gaussian blur, kernel 11, σ=5."""
    return blur(image)


def step_size(height: int, width: int, n_steps: int = N_STEPS) -> int:
    """Pixels changed per step: 224 at 224×224, scaled with the area otherwise."""
    return max(1, math.ceil(height * width / n_steps))


def _curve(
    forward: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    finish: torch.Tensor,
    order: torch.Tensor,
    step: int,
    target: int,
    batch_size: int,
) -> np.ndarray:
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
    forward: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    saliency: np.ndarray | torch.Tensor,
    target: int,
    *,
    n_steps: int = N_STEPS,
    batch_size: int = 64,
) -> CurveScores:
    """Insertion and deletion AUC of ``saliency`` ``(H, W)`` for ``target`` on ``image`` ``(3, H, W)``.

    ``forward`` maps a batch to logits: a :class:`~decam.models.ModelRunner` over the shared fast
    path, so the metric runs at the precision and speed of the methods it scores."""
    sal = torch.as_tensor(np.asarray(saliency, dtype=np.float32), device=image.device)
    if sal.shape != image.shape[-2:]:
        raise ValueError(f"saliency map {tuple(sal.shape)} does not match the image {tuple(image.shape[-2:])}")
    if not torch.isfinite(sal).all():
        raise ValueError("saliency map contains NaN or infinite values")
    order = torch.argsort(sal.flatten(), descending=True, stable=True)
    step = step_size(*sal.shape, n_steps=n_steps)

    zeros = torch.zeros_like(image)
    deletion = _curve(forward, image, zeros, order, step, target, batch_size)
    insertion = _curve(forward, blur_substrate(image), image, order, step, target, batch_size)
    return CurveScores(auc(insertion), auc(deletion), insertion, deletion)
