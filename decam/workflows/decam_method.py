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

    def __init__(self, model: LoadedModel, config: DictConfig | None = None) -> None:
        super().__init__(model)
        self.explainer = Explainer(model, config)

    def attribute(self, image: torch.Tensor, target: int) -> np.ndarray:
        exp = self.explainer.explain(image, target)
        self.queries = exp.queries
        return exp.saliency
