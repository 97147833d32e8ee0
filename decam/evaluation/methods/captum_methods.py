"""Methods from captum: Integrated Gradients (white box) and LIME (black box)."""

from __future__ import annotations

from typing import Annotated

import torch

from decam.evaluation.methods.base import METHODS, Budget, Fill, Method, PositiveInt, Score, seeded, units_for_budget
from decam.models import LoadedModel
from decam.registry import Range


@METHODS.register("ig")
class IntegratedGradients(Method):
    """Integrated Gradients (captum) from a black image, summed over the colour channels."""

    def __init__(self, model: LoadedModel, n_steps: PositiveInt = 50, batch_size: PositiveInt = 16,
                 absolute: bool = False) -> None:
        super().__init__(model)
        self.root = self._module()
        self.n_steps, self.batch_size, self.absolute = n_steps, batch_size, absolute

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        from captum.attr import IntegratedGradients as Impl

        with self._gradients(self.root):
            x = image.detach().clone().unsqueeze(0)
            attr = Impl(self.root).attribute(x, baselines=torch.zeros_like(x), target=target,
                                             n_steps=self.n_steps, internal_batch_size=self.batch_size)
        attr = attr[0].detach()
        return (attr.abs() if self.absolute else attr).sum(0)


def slic_segments(image: torch.Tensor, n_segments: int, compactness: float) -> torch.Tensor:
    """SLIC superpixels of ``image`` ``(3, H, W)`` as captum's ``feature_mask``: ``(1, 1, H, W)`` labels from 0."""
    from skimage.segmentation import slic

    rgb = image.detach().float().cpu().permute(1, 2, 0).numpy()
    segments = slic(rgb, n_segments=n_segments, compactness=compactness, start_label=0)
    return torch.as_tensor(segments, device=image.device).view(1, 1, *segments.shape)


@METHODS.register("lime")
class Lime(Method):
    """LIME (captum, ridge surrogate) on SLIC superpixels; switched-off superpixels take ``fill``
    (default ``black``, as decam's LIME always did). ``budget`` sets ``n_samples`` (one query each)."""

    def __init__(self, model: LoadedModel, n_samples: PositiveInt = 500, n_segments: PositiveInt = 50,
                 compactness: Annotated[float, Range(0, None, low_open=True)] = 10.0,
                 alpha: Annotated[float, Range(0, None)] = 1.0, batch_size: PositiveInt = 64, seed: int = 0,
                 fill: Fill = "black", score: Score = "logit", budget: Budget = None) -> None:
        super().__init__(model, budget)
        self.n_samples = units_for_budget(budget, 1, n_samples, "sample")
        self.n_segments, self.compactness = n_segments, compactness
        self.alpha, self.batch_size, self.seed, self.fill, self.score = alpha, batch_size, seed, fill, score

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import Lime as Impl

        mask = slic_segments(image, self.n_segments, self.compactness)
        baseline = self._fill(image, self.fill).unsqueeze(0)
        with seeded(image.device, self.seed):
            surrogate = SkLearnRidge(alpha=self.alpha)  # ridge like the reference LIME; captum's lasso often zeroes all
            attr = Impl(lambda x: self._outputs(x, self.score), interpretable_model=surrogate).attribute(
                image.detach().unsqueeze(0), baselines=baseline, target=target, feature_mask=mask,
                n_samples=self.n_samples, perturbations_per_eval=self.batch_size)
        return attr[0].mean(0)
