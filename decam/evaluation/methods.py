"""Explanation methods decam is compared with, registered under one name each (``decam list``).

Every method is built once per model (``create_method(name, model, **params)``) and called per
image: ``method(image (3, H, W) in pixel space, target) → (H, W) float32 map``, higher = more
important. Gradient methods come from pytorch-grad-cam and captum and need the network as an
``nn.Module`` (``LoadedModel.module``); RISE, LIME, the controls and decam only query the black box.
``method.queries`` is the number of images the last call pushed through the model.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from decam.errors import ConfigError
from decam.models.layers import CamModel, find_cam_model, preserved_state
from decam.models import LoadedModel
from decam.registry import Range, Registry

METHODS: Registry = Registry("method", "decam.methods")

PositiveInt = Annotated[int, Range(1, None)]


class Method:
    """Base class: ``attribute(image, target)`` returns an ``(H, W)`` map; ``__call__`` checks it."""

    name: str = "method"
    precision: str = "fp32"
    """Autocast of the black-box forward passes (``fp32`` or ``bf16``); set by :func:`create_method`."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.queries = 0

    def attribute(self, image: torch.Tensor, target: int) -> np.ndarray | torch.Tensor:
        raise NotImplementedError

    def __call__(self, image: torch.Tensor, target: int) -> np.ndarray:
        """``image`` ``(3, H, W)`` on the model's device → finite ``(H, W)`` float32 map."""
        self.queries = 0
        sal = self.attribute(image, int(target))
        if isinstance(sal, torch.Tensor):
            sal = sal.detach().float().cpu().numpy()
        sal = np.asarray(sal, dtype=np.float32)
        if sal.shape != tuple(image.shape[-2:]):
            raise RuntimeError(f"{self.name} returned a map of shape {sal.shape}; expected {tuple(image.shape[-2:])}")
        if not np.isfinite(sal).all():
            raise RuntimeError(f"{self.name} returned a map with NaN or infinite values")
        return sal

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Counted black-box forward pass → float logits."""
        self.queries += x.shape[0]
        autocast = (torch.autocast(x.device.type, dtype=torch.bfloat16) if self.precision == "bf16"
                    else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            return self.model.forward(x).float()

    def _module(self) -> nn.Module:
        if self.model.module is None:
            raise ConfigError(f"method {self.name!r} needs the network as an nn.Module (gradients); "
                              f"model {self.model.name!r} is a black-box callable")
        return self.model.module

    @contextlib.contextmanager
    def _counting(self, root: nn.Module) -> Iterator[None]:
        """Count images entering ``root`` while the block runs."""
        def count(_module, args):
            self.queries += args[0].shape[0]

        handle = root.register_forward_pre_hook(count)
        try:
            yield
        finally:
            handle.remove()

    @contextlib.contextmanager
    def _gradients(self, root: nn.Module) -> Iterator[None]:
        """Gradients on, queries counted, and the caller's network left as it was afterwards."""
        with preserved_state(root), self._counting(root), torch.inference_mode(False), torch.enable_grad():
            yield


def create_method(name: str, model: LoadedModel, precision: str = "fp32", **params) -> Method:
    """A registered method bound to ``model``; ``params`` are its constructor options."""
    method = METHODS[name](model, **params)
    method.name, method.precision = name, precision
    return method


class _Cam(Method):
    """A pytorch-grad-cam method on an automatically chosen (or named) target layer."""

    silence_stderr = False

    def __init__(self, model: LoadedModel, target_layer: str | None = None) -> None:
        super().__init__(model)
        self.cam_model = find_cam_model(self._module(), model.input_size, target_layer)

    def _build(self, root: nn.Module, layer: nn.Module):
        raise NotImplementedError

    def attribute(self, image: torch.Tensor, target: int) -> np.ndarray:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        root = self.cam_model.module
        with self._gradients(root):
            cam = self._build(root, self.cam_model.layer)
            try:
                x = image.detach().clone().unsqueeze(0).requires_grad_(True)
                quiet = contextlib.redirect_stderr(io.StringIO()) if self.silence_stderr else contextlib.nullcontext()
                with quiet:
                    out = cam(x, targets=[ClassifierOutputTarget(target)])
            finally:
                cam.activations_and_grads.release()
        return out[0]


@METHODS.register("gradcam")
class GradCAM(_Cam):
    """Grad-CAM (pytorch-grad-cam) on the last convolutional block; target_layer=dotted.path overrides."""

    def _build(self, root, layer):
        from pytorch_grad_cam import GradCAM as Impl

        return Impl(model=root, target_layers=[layer])


@METHODS.register("gradcampp")
class GradCAMPlusPlus(_Cam):
    """Grad-CAM++ (pytorch-grad-cam) on the same layer as Grad-CAM."""

    def _build(self, root, layer):
        from pytorch_grad_cam import GradCAMPlusPlus as Impl

        return Impl(model=root, target_layers=[layer])


@METHODS.register("ablationcam")
class AblationCAM(_Cam):
    """Ablation-CAM (pytorch-grad-cam): one forward pass per ablated channel of the target layer."""

    silence_stderr = True  # its per-image progress bar would break decam's

    def __init__(self, model: LoadedModel, target_layer: str | None = None, batch_size: PositiveInt = 32,
                 ratio_channels_to_ablate: Annotated[float, Range(0, 1, low_open=True)] = 1.0) -> None:
        super().__init__(model, target_layer)
        self.batch_size, self.ratio = batch_size, ratio_channels_to_ablate

    def _build(self, root, layer):
        from pytorch_grad_cam import AblationCAM as Impl
        from pytorch_grad_cam import AblationLayer

        return Impl(model=root, target_layers=[layer], ablation_layer=AblationLayer(),
                    batch_size=self.batch_size, ratio_channels_to_ablate=self.ratio)


@METHODS.register("fullgrad")
class FullGrad(_Cam):
    """FullGrad (pytorch-grad-cam): input gradients plus bias gradients of every conv/BN layer."""

    def __init__(self, model: LoadedModel) -> None:
        Method.__init__(self, model)
        self.cam_model = CamModel(self._module(), None, "every conv/BN layer with a bias")

    def _build(self, root, layer):
        from pytorch_grad_cam import FullGrad as Impl

        return Impl(model=root, target_layers=[])


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


@METHODS.register("rise")
class Rise(Method):
    """RISE (Petsiuk et al. 2018): random upsampled grid masks weighted by the target probability."""

    def __init__(self, model: LoadedModel, n_masks: PositiveInt = 4000, grid: PositiveInt = 7,
                 p: Annotated[float, Range(0, 1, low_open=True)] = 0.5, batch_size: PositiveInt = 64,
                 seed: int = 0) -> None:
        super().__init__(model)
        self.n_masks, self.grid, self.p, self.batch_size, self.seed = n_masks, grid, p, batch_size, seed

    def masks(self, n: int, height: int, width: int, gen: torch.Generator) -> torch.Tensor:
        """``(n, H, W)`` soft masks: a ``grid``² Bernoulli(p) grid, bilinear upsampled, randomly shifted."""
        device = gen.device
        cell_h, cell_w = math.ceil(height / self.grid), math.ceil(width / self.grid)
        cells = (torch.rand(n, 1, self.grid, self.grid, generator=gen, device=device) < self.p).float()
        up = F.interpolate(cells, size=((self.grid + 1) * cell_h, (self.grid + 1) * cell_w),
                           mode="bilinear", align_corners=False)[:, 0]
        dy = torch.randint(0, cell_h, (n, 1), generator=gen, device=device)
        dx = torch.randint(0, cell_w, (n, 1), generator=gen, device=device)
        rows = (dy + torch.arange(height, device=device)).unsqueeze(2)
        cols = (dx + torch.arange(width, device=device)).unsqueeze(1)
        return up[torch.arange(n, device=device).view(n, 1, 1), rows, cols]

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        _, h, w = image.shape
        gen = torch.Generator(device=image.device).manual_seed(self.seed)
        sal = torch.zeros(h, w, device=image.device)
        for first in range(0, self.n_masks, self.batch_size):
            m = self.masks(min(self.batch_size, self.n_masks - first), h, w, gen)
            probs = self._forward(image.unsqueeze(0) * m.unsqueeze(1)).softmax(-1)[:, target]
            sal += torch.einsum("n,nhw->hw", probs, m)
        return sal / (self.n_masks * self.p)


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
