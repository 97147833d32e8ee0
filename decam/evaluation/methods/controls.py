"""Controls: maps any method worth using should beat."""

from __future__ import annotations

from typing import Annotated

import torch

from decam.evaluation.methods.base import METHODS, Method
from decam.models import LoadedModel
from decam.registry import Range


@METHODS.register("random")
class RandomMap(Method):
    """Control: a uniform random map (seeded); any method worth using should beat it."""

    def __init__(self, model: LoadedModel, seed: int = 0) -> None:
        super().__init__(model)
        self.gen = torch.Generator().manual_seed(seed)

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        return torch.rand(*image.shape[-2:], generator=self.gen)


@METHODS.register("gaussian")
class GaussianMap(Method):
    """Control: a centred Gaussian blob (photos tend to put the object in the middle)."""

    def __init__(self, model: LoadedModel, sigma: Annotated[float, Range(0, None, low_open=True)] = 0.25) -> None:
        super().__init__(model)
        self.sigma = sigma

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        h, w = image.shape[-2:]
        y = (torch.arange(h) - (h - 1) / 2) / h
        x = (torch.arange(w) - (w - 1) / 2) / w
        return torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * self.sigma**2))
