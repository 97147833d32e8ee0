"""The contract of an explanation method decam is compared with, and the ``METHODS`` registry.

Every method is built once per model (``create_method(name, model, runner, **params)``) and called
per image: ``method(image (3, H, W) in pixel space, target) → (H, W) float32 map``, higher = more
important. Query methods send their batches through ``self.runner`` — the same
:class:`~decam.models.ModelRunner` over the same fast forward as decam's search — so queries and
seconds compare methods. Gradient methods need the network as an ``nn.Module``.
``method.queries`` is the number of images the last call pushed through the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import numpy as np
import torch
from torch import nn

from decam.errors import ConfigError
from decam.evaluation.methods.layers import preserved_state
from decam.models import LoadedModel, ModelRunner
from decam.registry import Range, Registry

METHODS: Registry = Registry("method", "decam.methods")

PositiveInt = Annotated[int, Range(1, None)]


class Method:
    """Base class: ``attribute(image, target)`` returns an ``(H, W)`` map; ``__call__`` checks it."""

    name: str = "method"

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.runner = ModelRunner(model.forward)
        """Where black-box queries go; :func:`create_method` hands in the shared fast one."""
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
        """Counted black-box forward pass → float32 logits."""
        with torch.no_grad():
            out = self.runner(x)
        self.queries += x.shape[0]
        return out

    def _module(self) -> nn.Module:
        if self.model.module is None:  # raised in a constructor, before create_method names the method
            name = next((n for n in METHODS if METHODS[n] is type(self)), self.name)
            raise ConfigError(f"method {name!r} needs the network as an nn.Module (a torch model: it takes "
                              f"gradients); model {self.model.name!r} is a black box")
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


def create_method(name: str, model: LoadedModel, runner: ModelRunner | None = None, **params) -> Method:
    """A registered method bound to ``model``; ``params`` are its constructor options. ``runner``:
    where its queries go (default: the model's own forward, unbatched settings)."""
    method = METHODS[name](model, **params)
    method.name = name
    if runner is not None:
        method.runner = runner
    return method
