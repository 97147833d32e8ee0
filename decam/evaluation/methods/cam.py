"""Gradient-based CAM methods from pytorch-grad-cam, on an automatically chosen (or named) layer."""

from __future__ import annotations

import contextlib
import io
from typing import Annotated

import numpy as np
import torch
from torch import nn

from decam.evaluation.methods.base import METHODS, Method, PositiveInt
from decam.evaluation.methods.layers import CamModel, find_cam_model
from decam.models import LoadedModel
from decam.registry import Range


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
