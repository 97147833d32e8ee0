"""An explanation: the saliency map and how it was found."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class TargetMap:
    """One requested class's map (several targets share one search)."""

    target: int
    class_name: str
    score: float
    """Logit on the unmasked image."""
    probability: float
    saliency: np.ndarray
    """``(H, W)`` float32 in [0, 1]."""


@dataclass
class Explanation:
    """A saliency map and how it was found."""

    saliency: np.ndarray
    """``(H, W)`` float32 in [0, 1] at the model's input size."""
    target: int
    class_name: str
    score: float
    """Target logit on the unmasked image."""
    probability: float
    queries: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    """Per generation: ``generation``, ``best``, ``mean``, ``median``, ``best_area``, ``queries``."""
    config: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    """Seconds per stage of the search: ``render``, ``compose``, ``forward``, ``searcher`` (the rest)."""
    image: torch.Tensor | None = field(default=None, repr=False)
    """The model input that was explained, ``(3, H, W)``."""
    targets: list[TargetMap] = field(default_factory=list)
    """Every requested class, the searched one first (its map is ``saliency``)."""
    stopped: str = "generations"
    """Why the search stopped: ``generations``, ``budget`` or ``converged`` (config ``converge``)."""
    remote: dict = field(default_factory=dict)
    """A black box behind a connection (``http(s)://``): ``images`` scored, HTTP ``requests`` and
    ``retries`` while this image was searched (searches sharing batches share requests); else empty."""
