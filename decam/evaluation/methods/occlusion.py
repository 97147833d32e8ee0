"""Sliding-window occlusion (Zeiler & Fergus 2014) from captum, with window and stride fitted to a budget."""

from __future__ import annotations

import math
from typing import Annotated, Optional

import torch

from decam.errors import ConfigError
from decam.evaluation.methods.base import METHODS, Budget, Fill, Method, PositiveInt, Score
from decam.models import LoadedModel
from decam.registry import Range

OptionalSide = Annotated[Optional[int], Range(1, None)]


def windows(side: int, window: int, stride: int) -> int:
    """Window positions along a side, as captum's ``Occlusion`` counts them (the last one clipped to the edge)."""
    return math.ceil((side - window) / stride) + 1


def fit_window(height: int, width: int, budget: int | None, window: int | None,
               stride: int | None) -> tuple[int, int]:
    """``(window, stride)`` for an image: the given ones; else, with a ``budget``, the smallest stride
    whose windows plus the one unoccluded query fit it (window = 2 × stride unless given: half-overlap);
    else window = side / 14 and stride = window / 2 (16 and 8 pixels at 224)."""
    side = min(height, width)
    if stride is None and budget is None:
        window = window or max(1, side // 14)
        stride = max(1, window // 2)
    elif stride is None:
        for s in range(1, side + 1):
            w = min(side, window or 2 * s)
            if s <= w and windows(height, w, s) * windows(width, w, s) + 1 <= budget:
                window, stride = w, s
                break
        else:
            raise ConfigError(f"occlusion: budget={budget} fits no window (needs at least 2 queries)")
    window = min(side, window or 2 * stride)
    if stride > window:
        raise ConfigError(f"occlusion: stride={stride} is larger than window={window}")
    cost = windows(height, window, stride) * windows(width, window, stride) + 1
    if budget is not None and cost > budget:
        raise ConfigError(f"occlusion: window={window}, stride={stride} cost {cost} queries, over budget={budget}")
    return window, stride


@METHODS.register("occlusion")
class Occlusion(Method):
    """Occlusion (captum ``Occlusion``): a ``window``² square of ``fill`` slides with ``stride``; each
    pixel's map value is the mean drop of the target ``score`` over the windows covering it.

    Cost = one unoccluded query + one per window position. ``budget`` picks the stride (and, unless
    given, window = 2 × stride) that spends the most of it; ``fill`` defaults to ``zero`` (0 in the
    model's normalized input, captum's default baseline on a normalized tensor).
    """

    def __init__(self, model: LoadedModel, window: OptionalSide = None, stride: OptionalSide = None,
                 fill: Fill = "zero", score: Score = "logit", batch_size: PositiveInt = 64,
                 budget: Budget = None) -> None:
        super().__init__(model, budget)
        self.window, self.stride, self.fill, self.score, self.batch_size = window, stride, fill, score, batch_size
        fit_window(*model.input_size, budget, window, stride)  # a bad setting fails before any image

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        from captum.attr import Occlusion as Impl

        window, stride = fit_window(*image.shape[-2:], self.budget, self.window, self.stride)
        baseline = self._fill(image, self.fill).unsqueeze(0)
        attr = Impl(lambda x: self._outputs(x, self.score)).attribute(
            image.detach().unsqueeze(0), sliding_window_shapes=(image.shape[0], window, window),
            strides=(image.shape[0], stride, stride), baselines=baseline, target=target,
            perturbations_per_eval=self.batch_size)
        return attr[0].mean(0)
