"""KernelSHAP (Lundberg & Lee 2017) from captum, on SLIC superpixels like decam's LIME."""

from __future__ import annotations

from typing import Annotated

import torch

from decam.evaluation.methods.base import METHODS, Budget, Fill, Method, PositiveInt, Score, seeded, units_for_budget
from decam.evaluation.methods.captum_methods import slic_segments
from decam.models import LoadedModel
from decam.registry import Range


@METHODS.register("kernelshap")
class KernelShap(Method):
    """KernelSHAP (captum ``KernelShap``) on SLIC superpixels: coalitions drawn with the Shapley kernel
    (the all-on and all-off coalitions first), a weighted linear fit gives each superpixel's Shapley
    value. Switched-off superpixels take ``fill`` (default ``zero``: 0 in the model's normalized
    input, captum's default baseline on a normalized tensor). ``budget`` sets ``n_samples``
    (one query each); the map is the target ``score``'s attribution of each pixel's superpixel."""

    def __init__(self, model: LoadedModel, n_samples: PositiveInt = 500, n_segments: PositiveInt = 50,
                 compactness: Annotated[float, Range(0, None, low_open=True)] = 10.0, fill: Fill = "zero",
                 score: Score = "logit", batch_size: PositiveInt = 64, seed: int = 0, budget: Budget = None) -> None:
        super().__init__(model, budget)
        self.n_samples = units_for_budget(budget, 1, n_samples, "sample")
        self.n_segments, self.compactness = n_segments, compactness
        self.fill, self.score, self.batch_size, self.seed = fill, score, batch_size, seed

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        from captum.attr import KernelShap as Impl

        mask = slic_segments(image, self.n_segments, self.compactness)
        baseline = self._fill(image, self.fill).unsqueeze(0)
        with seeded(image.device, self.seed):
            attr = Impl(lambda x: self._outputs(x, self.score)).attribute(
                image.detach().unsqueeze(0), baselines=baseline, target=target, feature_mask=mask,
                n_samples=self.n_samples, perturbations_per_eval=self.batch_size)
        return attr[0].mean(0)
