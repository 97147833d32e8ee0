"""The one fast forward path every query-based method shares: device, precision, layout, folding, compile.

:class:`FastForward` is what decam's search, RISE, LIME and the metrics send their batches
through, so seconds per image compare methods rather than implementations. :class:`ForwardSpec`
rebuilds the same forward in another process (a Ray actor) from the model's name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ContextManager

import torch

from decam.errors import ConfigError
from decam.models.loaded import LoadedModel

PRECISIONS = ("auto", "fp32", "bf16")


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, f, lambda: False)() for f in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → ``bf16`` where the hardware runs it natively, else ``fp32``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> ContextManager:
    """bf16 autocast on ``device`` for ``precision="bf16"``, else nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def module_forward(model: LoadedModel, device: torch.device, *, fold: bool = True,
                   compile: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """An ``nn.Module`` model moved to ``device`` in channels_last, with BatchNorm folded (``fold``,
    decam.models.folding) and through ``torch.compile`` (``compile``, decam.models.compiling); any
    other black box as it is. The caller's module keeps its weights (folding works on a copy)."""
    if model.module is None:
        return model.forward
    model.module.to(device).to(memory_format=torch.channels_last)
    if model.forward is not model.module:
        return model.forward
    from decam.models.compiling import CompiledForward
    from decam.models.folding import fold_batchnorm

    forward = fold_batchnorm(model.module) if fold else model.module
    return CompiledForward(forward) if compile else forward


class FastForward:
    """``model`` as queries run it: on ``device`` in the fastest layout, bf16 autocast where asked,
    under ``torch.inference_mode``; any thread may call it (autocast is entered per call)."""

    def __init__(self, model: LoadedModel, device: str | torch.device = "cpu", precision: str = "fp32", *,
                 fold: bool = True, compile: bool = False) -> None:
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.channels_last = model.module is not None
        self.fn = module_forward(model, self.device, fold=fold, compile=compile)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.fn(x)


@dataclass(frozen=True)
class ForwardSpec:
    """How to rebuild a :class:`FastForward` elsewhere: the model's ``(name, weights[, model_options])`` and settings."""

    source: tuple[str, str | None] | tuple[str, str | None, dict]
    precision: str = "fp32"
    fold: bool = True
    compile: bool = False

    def build(self, device: str | torch.device = "cpu") -> FastForward:
        from decam.models.zoo import load_model

        return FastForward(load_model(*self.source), device, self.precision, fold=self.fold, compile=self.compile)
