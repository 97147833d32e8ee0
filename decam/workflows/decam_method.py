"""decam itself as an evaluation method, so ``decam evaluate`` compares it like any other."""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig

from decam.evaluation.methods import Method
from decam.models import LoadedModel
from decam.search.explainer import Explainer


class DecamMethod(Method):
    """DE-CAM itself (decam.search.explainer.Explainer) with the given run configuration (default: configs/default.yaml)."""

    shares_targets = True

    def __init__(self, model: LoadedModel, config: DictConfig | None = None) -> None:
        super().__init__(model)
        self.explainer = Explainer(model, config)

    def warm_up(self, batch: torch.Tensor) -> None:
        self.explainer.forward(batch)

    def attribute(self, image: torch.Tensor, target: int) -> np.ndarray:
        exp = self.explainer.explain(image, target)
        self.queries = exp.queries
        return exp.saliency

    def maps_for(self, image: torch.Tensor, targets: list[int]) -> list[np.ndarray]:
        """Every class's map from ONE search, whose fitness rewards the first class (or, with config
        ``reward: mean``, the mean of all); ``queries``: that search's."""
        self.queries = 0
        exp = self.explainer.explain(image, list(targets))
        self.queries = exp.queries
        return [self._checked(image, t.saliency) for t in exp.targets]
