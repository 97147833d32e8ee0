"""Aggregators: the masks a search produced + their fitness → one saliency map ``(H, W)`` in [0, 1]."""

from __future__ import annotations

from typing import Annotated

import torch

from decam.registry import AGGREGATORS, Range


class Aggregator:
    """Base class. ``observe`` sees every evaluated batch (for estimators over all queries);
    ``finalize`` gets the final population's masks ``(N, H, W)`` and fitness ``(N,)``."""

    def observe(self, masks: torch.Tensor, fitness: torch.Tensor) -> None:
        """Called with every evaluated batch; the default ignores it."""

    def finalize(self, masks: torch.Tensor, fitness: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def normalize_max(total: torch.Tensor) -> torch.Tensor:
    """Divide by the maximum (an all-zero sum stays zero)."""
    peak = total.max()
    return total / peak if peak > 0 else torch.zeros_like(total)


def paper_selection(fitness: torch.Tensor, ratio: float = 2 / 3) -> torch.Tensor:
    """Boolean ``(N,)``: fitness above ``ratio`` × the population mean.

    The paper's rule assumes a positive mean. When the mean is ≤ 0 (e.g. a class the model scores
    below zero), it is applied to fitness shifted so the worst individual sits at 0 — the
    threshold becomes ``min + ratio · (mean − min)``, which keeps the same above-average spirit
    and is invariant to the logit's offset. If nobody passes (all equal), everybody is kept.
    """
    mean = fitness.mean()
    if mean > 0:
        threshold = ratio * mean
    else:
        low = fitness.min()
        threshold = low + ratio * (mean - low)
    keep = fitness > threshold
    return keep if keep.any() else torch.ones_like(keep)


@AGGREGATORS.register("paper")
class PaperThreshold(Aggregator):
    """The DE-CAM paper's Monte Carlo step: sum the final masks whose fitness beats ``ratio``
    of the population mean, divide by the max."""

    def __init__(self, ratio: Annotated[float, Range(0.0, 10.0)] = 2 / 3) -> None:
        self.ratio = ratio

    def finalize(self, masks: torch.Tensor, fitness: torch.Tensor) -> torch.Tensor:
        keep = paper_selection(fitness, self.ratio)
        return normalize_max(masks[keep].sum(dim=0))
