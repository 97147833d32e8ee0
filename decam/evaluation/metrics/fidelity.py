"""MuFidelity (Bhatt, Weller & Moura, 2020, "Evaluating and aggregating feature-based model explanations",
definition 3): does the attribution mass of a random subset of the image predict how much removing that
subset lowers the score?

    μF = corr_S ( Σ_{i∈S} φ_i ,  f(x) − f(x with S set to the baseline) )

over random subsets S. As xplique's ``MuFidelity`` runs it on images: the image is cut into a
``grid × grid`` grid (9), each cell is removed independently with probability ``p`` (0.2), 200 subsets;
a removed cell takes the baseline value — here the deletion substrate of the metric suite (default the
reference, 0 in the normalized input, i.e. the normalization's mean colour; xplique's default baseline is
0 in whatever space the model's input is). The score ``f`` is xplique's default operator, the model's
output for the target: decam's models return **logits**, so it is the target logit (``score="probability"``
uses the softmax instead). The correlation is Pearson's, as in the paper and Quantus'
``FaithfulnessCorrelation``; xplique's current code uses Spearman's (``correlation_kind="spearman"``). A
constant score or attribution mass (no variation to correlate) scores 0, as in xplique.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from decam.evaluation.metrics.curves import Forward, check_map, resolve_normalization
from decam.substrates import Normalization, substrate

SCORES = ("logit", "probability")
CORRELATIONS = ("pearson", "spearman")


def subset_masks(n: int, grid: int, p: float, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """``(n, 1, H, W)`` masks, 1 = kept, 0 = removed: each of the ``grid × grid`` cells removed with
    probability ``p``, resized to the image by nearest neighbour (pixel centres, as TF's resize)."""
    kept = (torch.rand(n, 1, grid, grid, generator=generator) > p).float()
    return F.interpolate(kept, size=size, mode="nearest-exact")


def _score(logits: torch.Tensor, target: int, score: str) -> torch.Tensor:
    logits = logits.float()
    return (logits.softmax(-1) if score == "probability" else logits)[:, target]


def correlation(a: np.ndarray, b: np.ndarray, kind: str = "pearson") -> float:
    """Pearson or Spearman correlation of two vectors; 0 when either is constant (nothing to correlate)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    if kind == "spearman":
        from scipy.stats import spearmanr

        r = spearmanr(a, b)[0]
    else:
        r = np.corrcoef(a, b)[0, 1]
    return 0.0 if np.isnan(r) else float(r)


def mu_fidelity(
    forward: Forward,
    image: torch.Tensor,
    saliency: np.ndarray | torch.Tensor,
    target: int,
    *,
    normalization: Normalization | None = None,
    baseline: str = "zero",
    grid: int = 9,
    p: float = 0.2,
    n_samples: int = 200,
    score: str = "logit",
    correlation_kind: str = "pearson",
    seed: int = 0,
    batch_size: int = 64,
) -> float:
    """MuFidelity of ``saliency`` ``(H, W)`` for ``target`` on ``image`` ``(3, H, W)`` (pixel space), in
    [-1, 1], higher is better. ``n_samples + 1`` queries through ``forward``; the subsets come from a
    generator seeded with ``seed``, so every method is judged on the same subsets of an image."""
    if score not in SCORES or correlation_kind not in CORRELATIONS:
        raise ValueError(f"score must be one of {SCORES} and correlation one of {CORRELATIONS}")
    if not 0 < p < 1 or grid < 1 or n_samples < 2:
        raise ValueError(f"MuFidelity needs 0 < p < 1, grid ≥ 1 and at least 2 samples "
                         f"(got {p}, {grid}, {n_samples})")
    sal = check_map(saliency, image).double()
    fill = substrate(image, baseline, resolve_normalization(normalization))
    gen = torch.Generator().manual_seed(seed)
    masks = subset_masks(n_samples, grid, p, tuple(image.shape[-2:]), gen).to(image.device)
    with torch.inference_mode():
        base = _score(forward(image.unsqueeze(0)), target, score)
        drops, mass = [], []
        for chunk in masks.split(batch_size):
            x = fill + chunk * (image - fill)
            drops.append(base - _score(forward(x), target, score))
            mass.append((sal * (1 - chunk[:, 0].double())).sum(dim=(-2, -1)))
    return correlation(torch.cat(mass).cpu().numpy(), torch.cat(drops).double().cpu().numpy(), correlation_kind)
