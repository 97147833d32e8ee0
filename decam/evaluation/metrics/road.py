"""ROAD (Rong et al., 2022, "A consistent and efficient evaluation strategy for attribution methods"):
remove pixels by saliency percentile and fill them by *noisy linear imputation* (each removed pixel the
weighted mean of its 8 neighbours, solved as one sparse linear system, plus Gaussian noise 0.01), so the
removal leaks little of the removed shape to the model.

The imputer and the two removal orders are pytorch-grad-cam's (``pytorch_grad_cam.metrics.road``, MIT,
the ROAD authors' code; already a decam dependency). As there, ``percentile`` p keeps the pixels below the
p-th percentile of the ranking and imputes the rest: **MoRF** (most relevant first) at p imputes the
``100 − p`` % most salient pixels, **LeRF** (least relevant first) at p keeps the p % most salient and
imputes the rest. Each value is pytorch-grad-cam's ``PerturbationConfidenceMetric`` difference, the target's
softmax probability after imputation minus before (its ``ClassifierOutputSoftmaxTarget``), averaged over
the percentiles 10, 20, …, 90 like ``ROADMostRelevantFirstAverage`` / ``ROADLeastRelevantFirstAverage``.

- MoRF: lower (more negative) is better — removing the salient pixels should destroy the class.
- LeRF: higher (nearer 0) is better — removing the unimportant pixels should not.
- ROAD = (LeRF − MoRF) / 2, pytorch-grad-cam's ``ROADCombined``: higher is better.

Two choices differ from calling those classes on the map: the imputation runs on the *normalized* image
(the model's own input space, as pytorch-grad-cam's users feed it; decam's models normalize inside, so the
image is normalized, imputed and mapped back), and the map is replaced by its pixel ranks (ties broken by
position, as in insertion / deletion) so every percentile removes exactly its share of pixels — on the raw
map a block of equal values (a CAM's zeros) would be removed all at once. The noise comes from a
generator seeded per call, and all imputed images go through ``forward`` in one batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from decam.evaluation.metrics.curves import Forward, check_map, resolve_normalization, salient_order
from decam.substrates import Normalization, denormalize, normalize

PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


@dataclass
class RoadScores:
    """Probability after imputation minus before, per percentile, for both removal orders."""

    percentiles: tuple[int, ...]
    morf: np.ndarray
    lerf: np.ndarray

    @property
    def morf_mean(self) -> float:
        return float(self.morf.mean())

    @property
    def lerf_mean(self) -> float:
        return float(self.lerf.mean())

    @property
    def combined(self) -> float:
        """``(LeRF − MoRF) / 2``: higher is better."""
        return (self.lerf_mean - self.morf_mean) / 2


def relevance_ranks(saliency: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` float64 ranks, 1 = least salient … H·W = most salient; ties broken by position."""
    order = salient_order(saliency).cpu()
    ranks = torch.empty(order.numel(), dtype=torch.float64)
    ranks[order] = torch.arange(order.numel(), 0, -1, dtype=torch.float64)
    return ranks.view(saliency.shape)


def imputed_images(image: torch.Tensor, saliency: torch.Tensor, normalization: Normalization,
                   percentiles: tuple[int, ...], seed: int) -> torch.Tensor:
    """``(2·len(percentiles), 3, H, W)`` pixel-space images: MoRF at each percentile, then LeRF."""
    from pytorch_grad_cam.metrics.perturbation_confidence import RemoveLeastRelevantFirst, RemoveMostRelevantFirst
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    ranks = relevance_ranks(saliency)
    z = normalize(image.detach().float().cpu(), normalization)
    out = []
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():  # noise from torch's global generator
        warnings.filterwarnings("ignore", "__array_wrap__", DeprecationWarning)  # numpy on the library's mask
        torch.manual_seed(seed)
        for order in (RemoveMostRelevantFirst, RemoveLeastRelevantFirst):
            for p in percentiles:
                out.append(denormalize(order(p, NoisyLinearImputer())(z, ranks), normalization))
    return torch.stack(out).to(image.device, image.dtype)


def road(
    forward: Forward,
    image: torch.Tensor,
    saliency: np.ndarray | torch.Tensor,
    target: int,
    *,
    normalization: Normalization | None = None,
    percentiles: tuple[int, ...] = PERCENTILES,
    seed: int = 0,
) -> RoadScores:
    """MoRF and LeRF ROAD scores of ``saliency`` ``(H, W)`` for ``target`` on ``image`` ``(3, H, W)`` (pixel
    space): ``2·len(percentiles) + 1`` queries, and one sparse solve per imputed image (most of the cost)."""
    if not percentiles or not all(0 < p < 100 for p in percentiles):
        raise ValueError(f"ROAD percentiles must lie strictly between 0 and 100, got {percentiles}")
    sal = check_map(saliency, image)
    batch = torch.cat([image.unsqueeze(0),
                       imputed_images(image, sal, resolve_normalization(normalization), tuple(percentiles), seed)])
    with torch.inference_mode():
        probs = forward(batch).float().softmax(-1)[:, target].cpu().double().numpy()
    change = probs[1:] - probs[0]
    n = len(percentiles)
    return RoadScores(tuple(percentiles), change[:n], change[n:])
