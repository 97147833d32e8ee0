"""What decam knows about a black box: :class:`LoadedModel`, and wrapping any callable into one.

Every model takes images in *pixel space* (``(B, 3, H, W)``, values in [0, 1]) and returns logits
``(B, C)``; a normalization lives inside the model (:class:`Normalized`), so "black" means a black
pixel whatever the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from decam.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, in the order of ImageNet models' outputs."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass
class LoadedModel:
    """A black box plus what decam needs around it."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    """Pixel-space batch ``(B, 3, H, W)`` → logits ``(B, C)``; may be any callable."""
    input_size: tuple[int, int] = (224, 224)
    resize: int | None = 256
    """Shorter side before the centre crop to ``input_size`` (None: resize straight to it)."""
    class_names: list[str] | None = None
    name: str = "callable"
    module: nn.Module | None = field(default=None, repr=False)
    """The same network as an ``nn.Module`` when there is one (gradient baselines need it)."""
    source: tuple[str, str | None] | tuple[str, str | None, dict] | None = None
    """``(name, weights)``, or ``(name, weights, model_options)``, that :func:`~decam.models.load_model`
    rebuilds it from in another process (a Ray actor); None for a callable handed over from Python code."""
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """``(mean, std)`` the model applies to its pixel-space input, when known: the colour that is 0
    in its normalized input is ``mean`` (the RISE metric's deletion value)."""

    def class_name(self, index: int) -> str:
        if self.class_names and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)


class Normalized(nn.Module):
    """Pixel-space input → ``net((x - mean) / std)``."""

    def __init__(self, net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def from_callable(model: Callable, name: str = "callable", input_size: tuple[int, int] = (224, 224)) -> LoadedModel:
    """Wrap any ``Tensor[B,3,H,W] → Tensor[B,C]`` callable; it receives images exactly as given."""
    if isinstance(model, LoadedModel):
        return model
    if not callable(model):
        raise ConfigError(f"model must be a registered name or a callable, got {type(model).__name__}")
    module = model if isinstance(model, nn.Module) else None
    normalization = None
    if isinstance(model, Normalized):
        normalization = (tuple(model.mean.flatten().tolist()), tuple(model.std.flatten().tolist()))
    return LoadedModel(model, input_size, None, None, name, module, normalization=normalization)
