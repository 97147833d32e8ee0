"""SHAP's Partition explainer (Lundberg et al.; the ``shap`` library) with a blur masker."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch

from decam.errors import ConfigError
from decam.evaluation.methods.base import METHODS, Budget, Method, PositiveInt, Score, units_for_budget
from decam.models import LoadedModel

if TYPE_CHECKING:
    from shap.maskers import Image


@METHODS.register("shap")
class ShapPartition(Method):
    """Owen values of the target ``score`` from ``shap.PartitionExplainer`` over shap's fixed
    hierarchical split of the image, removed regions taking ``shap.maskers.Image("blur(k,k)")``
    (OpenCV box blur of side ``blur``; 128 is shap's ImageNet example), summed over the colour channels.

    ``max_evals`` (shap's default 500) is what the explainer may spend, the base and full images
    included; ``budget`` sets it. shap's recursion can overshoot an odd ``max_evals`` by one query,
    so an odd value is rounded down. Queries reach the model in batches of ``batch_size`` through
    decam's counted forward.

    shap breaks ties between equally promising partitions with numpy's global generator; it is
    seeded with ``seed`` for the call (and restored after), so a seed gives one map.

    The masker is shap's, built once per image shape (its partition tree takes seconds at 224²) and
    given each image's blur as its fill — the same ``cv2.blur`` the ``"blur(k,k)"`` string computes,
    once per image instead of once per query.
    """

    def __init__(self, model: LoadedModel, max_evals: PositiveInt = 500, blur: PositiveInt = 128,
                 score: Score = "logit", batch_size: PositiveInt = 64, seed: int = 0,
                 budget: Budget = None) -> None:
        super().__init__(model, budget)
        evals = units_for_budget(budget, 1, max_evals, "query")
        self.max_evals = evals - evals % 2
        if self.max_evals < 4:
            raise ConfigError(f"shap needs at least 4 queries (max_evals/budget = {evals})")
        self.blur, self.score, self.batch_size, self.seed = blur, score, batch_size, seed
        self._maskers: dict[tuple[int, ...], object] = {}

    def _masker(self, shape: tuple[int, ...]) -> Image:
        import shap

        if shape not in self._maskers:
            self._maskers[shape] = shap.maskers.Image(np.zeros(shape, dtype=np.float32), shape)
        return self._maskers[shape]

    def attribute(self, image: torch.Tensor, target: int) -> np.ndarray:
        import cv2
        import shap

        x = np.ascontiguousarray(image.detach().float().permute(1, 2, 0).cpu().numpy())

        def scores(batch: np.ndarray) -> np.ndarray:
            pixels = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(image.device)
            return self._scores(pixels.permute(0, 3, 1, 2), target, self.score)[:, None].double().cpu().numpy()

        masker = copy.copy(self._masker(x.shape))
        masker.mask_value = cv2.blur(x, (self.blur, self.blur)).ravel()
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            explanation = shap.PartitionExplainer(scores, masker)(
                x[None], max_evals=self.max_evals, batch_size=self.batch_size, silent=True)
        finally:
            np.random.set_state(state)
        return np.asarray(explanation.values)[0, ..., 0].sum(-1)
