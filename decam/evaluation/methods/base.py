"""The contract of an explanation method decam is compared with, and the ``METHODS`` registry.

Every method is built once per model (``create_method(name, model, runner, **params)``) and called
per image: ``method(image (3, H, W) in pixel space, target) → (H, W) float32 map``, higher = more
important. Query methods send their batches through ``self.runner`` — the same
:class:`~decam.models.ModelRunner` over the same fast forward as decam's search — so queries and
seconds compare methods. Gradient methods need the network as an ``nn.Module``.
``method.queries`` is the number of images the last call pushed through the model.

Query methods share three knobs: ``budget`` (the queries one image may cost; it sets the method's
natural size parameter and :meth:`Method._forward` refuses to go past it), ``fill`` (what removed
pixels become: :data:`Fill`) and, where the method reads a score, ``score`` (:data:`Score`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated, Literal, Optional

import numpy as np
import torch
from torch import nn

from decam.errors import ConfigError
from decam.evaluation.methods.layers import preserved_state
from decam.models import LoadedModel, ModelRunner
from decam.registry import Range, Registry
from decam.substrates import fill_image, normalized_zero

METHODS: Registry = Registry("method", "decam.methods")

PositiveInt = Annotated[int, Range(1, None)]
Budget = Annotated[Optional[int], Range(1, None)]
"""Queries one image may cost; None: the method's own default size."""
Fill = Literal["zero", "black", "blur"]
"""What removed pixels become: ``zero`` = 0 in the model's normalized input (its mean colour; black
when the normalization is unknown), ``black`` = pixel 0, ``blur`` = decam's blur (kernel 11, σ=5)."""
Score = Literal["logit", "probability"]
"""What a method reads from the model for the target class: its logit or its softmax probability."""


def units_for_budget(budget: int | None, cost: int, default: int, what: str) -> int:
    """How many ``what`` (each costing ``cost`` queries) fit in ``budget``; ``default`` without a budget."""
    if budget is None:
        return default
    if budget < cost:
        raise ConfigError(f"budget={budget} is below the cost of one {what} ({cost} queries)")
    return budget // cost


class Method:
    """Base class: ``attribute(image, target)`` returns an ``(H, W)`` map; ``__call__`` checks it."""

    name: str = "method"
    shares_targets: bool = False
    """Whether :meth:`maps_for` finds several classes' maps with one run (decam: one search), so that
    run's seconds and queries are those of all the classes together."""

    def __init__(self, model: LoadedModel, budget: int | None = None) -> None:
        self.model = model
        self.runner = ModelRunner(model.forward)
        """Where black-box queries go; :func:`create_method` hands in the shared fast one."""
        self.queries = 0
        self.budget = budget
        """Most queries one call may send through :meth:`_forward` (None: no limit)."""

    def attribute(self, image: torch.Tensor, target: int) -> np.ndarray | torch.Tensor:
        raise NotImplementedError

    def warm_up(self, batch: torch.Tensor) -> None:
        """Called once, untimed, before the first image: a method with a forward path of its own runs
        ``batch`` through it (the shared one is warmed by the evaluation)."""

    def __call__(self, image: torch.Tensor, target: int) -> np.ndarray:
        """``image`` ``(3, H, W)`` on the model's device → finite ``(H, W)`` float32 map."""
        self.queries = 0
        return self._checked(image, self.attribute(image, int(target)))

    def maps_for(self, image: torch.Tensor, targets: list[int]) -> list[np.ndarray]:
        """One checked map per class of ``targets``; ``queries`` counts them all. By default one call
        per class; a method with :attr:`shares_targets` overrides it with one run for all of them."""
        maps, total = [], 0
        for t in targets:
            maps.append(self(image, t))
            total += self.queries
        self.queries = total
        return maps

    def _checked(self, image: torch.Tensor, sal: np.ndarray | torch.Tensor) -> np.ndarray:
        """``sal`` as a finite ``(H, W)`` float32 array the size of ``image``, else a RuntimeError naming the method."""
        if isinstance(sal, torch.Tensor):
            sal = sal.detach().float().cpu().numpy()
        sal = np.asarray(sal, dtype=np.float32)
        if sal.shape != tuple(image.shape[-2:]):
            raise RuntimeError(f"{self.name} returned a map of shape {sal.shape}; expected {tuple(image.shape[-2:])}")
        if not np.isfinite(sal).all():
            raise RuntimeError(f"{self.name} returned a map with NaN or infinite values")
        return sal

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Counted black-box forward pass → float32 logits; never past ``self.budget``."""
        if self.budget is not None and self.queries + x.shape[0] > self.budget:
            raise RuntimeError(f"{self.name} would send {self.queries + x.shape[0]} queries, "
                               f"over its budget of {self.budget}")
        with torch.no_grad():
            out = self.runner(x)
        self.queries += x.shape[0]
        return out

    def _outputs(self, x: torch.Tensor, score: str) -> torch.Tensor:
        """Counted forward → every class's ``score`` (:data:`Score`), shape ``(B, C)``."""
        out = self._forward(x)
        return out.softmax(-1) if score == "probability" else out

    def _scores(self, x: torch.Tensor, target: int, score: str) -> torch.Tensor:
        """Counted forward → the target's ``score`` (:data:`Score`), shape ``(B,)``."""
        return self._outputs(x, score)[:, target]

    def _fill(self, image: torch.Tensor, kind: str) -> torch.Tensor:
        """What removed pixels of ``image`` become under ``kind`` (:data:`Fill`), ``(3, H, W)``."""
        if kind == "zero":
            return normalized_zero(image, self.model.normalization)
        return fill_image(image, kind)

    def _perturber(self, image: torch.Tensor, kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """masks ``(N, H, W)`` in [0, 1] → ``fill + M ⊙ (image − fill)`` ``(N, 3, H, W)``, composed as decam's
        search composes its batches (one fused pass, channels_last when the forward path is)."""
        fill = self._fill(image, kind)
        fill_hwc = fill.permute(1, 2, 0).contiguous()
        delta_hwc = (image - fill).permute(1, 2, 0).contiguous()
        channels_last = getattr(self.runner.forward, "channels_last", False)

        def perturb(masks: torch.Tensor) -> torch.Tensor:
            x = torch.addcmul(fill_hwc, masks.unsqueeze(-1), delta_hwc).permute(0, 3, 1, 2)
            return x if channels_last else x.contiguous()

        return perturb

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


@contextlib.contextmanager
def seeded(device: torch.device, seed: int) -> Iterator[None]:
    """torch's global generator seeded for the block (libraries that draw from it: captum), restored after."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def create_method(name: str, model: LoadedModel, runner: ModelRunner | None = None, **params) -> Method:
    """A registered method bound to ``model``; ``params`` are its constructor options. ``runner``:
    where its queries go (default: the model's own forward, unbatched settings)."""
    method = METHODS[name](model, **params)
    method.name = name
    if runner is not None:
        method.runner = runner
    return method
