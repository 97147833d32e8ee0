"""Methods from captum: Integrated Gradients (white box) and LIME (black box)."""

from __future__ import annotations

from typing import Annotated

import torch

from decam.evaluation.methods.base import METHODS, Method, PositiveInt
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


@METHODS.register("lime")
class Lime(Method):
    """LIME (captum, ridge surrogate) on SLIC superpixels; switched-off superpixels are black."""

    def __init__(self, model: LoadedModel, n_samples: PositiveInt = 500, n_segments: PositiveInt = 50,
                 compactness: Annotated[float, Range(0, None, low_open=True)] = 10.0,
                 alpha: Annotated[float, Range(0, None)] = 1.0, batch_size: PositiveInt = 64, seed: int = 0) -> None:
        super().__init__(model)
        self.n_samples, self.n_segments, self.compactness = n_samples, n_segments, compactness
        self.alpha, self.batch_size, self.seed = alpha, batch_size, seed

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import Lime as Impl
        from skimage.segmentation import slic

        rgb = image.detach().float().cpu().permute(1, 2, 0).numpy()
        segments = slic(rgb, n_segments=self.n_segments, compactness=self.compactness, start_label=0)
        mask = torch.as_tensor(segments, device=image.device).view(1, 1, *segments.shape)
        devices = [image.device] if image.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            surrogate = SkLearnRidge(alpha=self.alpha)  # ridge like the reference LIME; captum's lasso often zeroes all
            attr = Impl(self._forward, interpretable_model=surrogate).attribute(
                image.detach().unsqueeze(0), baselines=0.0, target=target, feature_mask=mask,
                n_samples=self.n_samples, perturbations_per_eval=self.batch_size)
        return attr[0].mean(0)
