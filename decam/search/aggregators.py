"""Aggregators: the masks a search produced + their fitness → one saliency map ``(H, W)`` in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import torch

from decam.registry import AGGREGATORS, Range


class Aggregator:
    """Base class. ``observe`` sees every evaluated batch (for estimators over all queries);
    ``finalize`` gets the final population's masks ``(N, H, W)`` and fitness ``(N,)`` and returns the
    first target's map. Aggregators that can estimate every requested target's map from the same
    queries override ``finalize_all``; ``estimate`` is the map so far (for anytime stopping)."""

    def observe(self, masks: torch.Tensor, scores: dict[str, torch.Tensor]) -> None:
        """Called with every evaluated batch (``logit``, ``probability``, ``fitness``: ``(N,)`` for the
        first target; ``logits``, ``probabilities``: ``(N, T)`` for all targets); the default ignores it."""

    def finalize(self, masks: torch.Tensor, fitness: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def finalize_all(self, masks: torch.Tensor, fitness: torch.Tensor, n_targets: int) -> torch.Tensor:
        """``(T, H, W)``: one map per requested target. The default can only give the first target's."""
        if n_targets > 1:
            raise NotImplementedError(f"aggregator {type(self).__name__} gives one map per search; "
                                      "use aggregator=evaluated for several targets")
        return self.finalize(masks, fitness)[None]

    def estimate(self, population_masks: Callable[[], torch.Tensor], fitness: torch.Tensor) -> torch.Tensor:
        """The first target's map if the search stopped now (``population_masks()`` renders the population)."""
        return self.finalize(population_masks(), fitness)

    def state_dict(self) -> dict:
        """What ``observe`` accumulated (tensors and numbers), for a search checkpoint; none by default."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


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


@AGGREGATORS.register("evaluated")
class EvaluatedMasks(Aggregator):
    """A RISE-style estimate over every mask the search evaluated, at no extra query.

    Pixel saliency is the mean score of the masks that kept the pixel, minus (``contrast``) the
    mean score of those that removed it: ``E[s | kept] − E[s | removed]``. The difference cancels
    the effect of how often a pixel was sampled, which DE makes very uneven.
    """

    def __init__(self, score: Literal["probability", "logit"] = "probability", contrast: bool = True) -> None:
        self.score, self.contrast = score, contrast
        self.sum_sm: torch.Tensor | None = None  # Σ s·M per target, (T, H, W)
        self.sum_m: torch.Tensor | None = None  # Σ M, (H, W)
        self.sum_s: torch.Tensor | None = None  # Σ s per target, (T,)
        self.count = 0

    def observe(self, masks: torch.Tensor, scores: dict[str, torch.Tensor]) -> None:
        every = scores.get({"probability": "probabilities", "logit": "logits"}[self.score])
        s = (every if every is not None else scores[self.score][:, None]).to(masks.dtype)  # (N, T)
        sm = torch.einsum("nt,nhw->thw", s, masks)
        m, total = masks.sum(dim=0), s.sum(dim=0)
        self.sum_sm = sm if self.sum_sm is None else self.sum_sm + sm
        self.sum_m = m if self.sum_m is None else self.sum_m + m
        self.sum_s = total if self.sum_s is None else self.sum_s + total
        self.count += masks.shape[0]

    def finalize(self, masks: torch.Tensor, fitness: torch.Tensor) -> torch.Tensor:
        return self._maps()[0]

    def finalize_all(self, masks: torch.Tensor, fitness: torch.Tensor, n_targets: int) -> torch.Tensor:
        return self._maps()[:n_targets]

    def estimate(self, population_masks: Callable[[], torch.Tensor], fitness: torch.Tensor) -> torch.Tensor:
        return self._maps()[0]  # from the sums so far: no rendering needed

    def state_dict(self) -> dict:
        return {"sum_sm": self.sum_sm, "sum_m": self.sum_m, "sum_s": self.sum_s, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.sum_sm, self.sum_m, self.sum_s, self.count = state["sum_sm"], state["sum_m"], state["sum_s"], state["count"]

    def _maps(self) -> torch.Tensor:
        if self.sum_sm is None:
            raise RuntimeError("the evaluated aggregator saw no masks (observe was never called)")
        sal = self.sum_sm / self.sum_m.clamp(min=1.0)
        if self.contrast:
            sal = sal - (self.sum_s[:, None, None] - self.sum_sm) / (self.count - self.sum_m).clamp(min=1.0)
        return torch.stack([normalize_range(m) for m in sal])


def normalize_range(sal: torch.Tensor) -> torch.Tensor:
    """Shift and scale to [0, 1] (a constant map becomes all zeros)."""
    low, high = sal.min(), sal.max()
    return (sal - low) / (high - low) if high > low else torch.zeros_like(sal)
