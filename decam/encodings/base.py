"""The contract every mask encoding fulfils, built-in or third-party."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Encoding(ABC):
    """Turns a population of real-valued genomes ``(N, G)`` into masks ``(N, H, W)`` in [0, 1].

    Any real genome must give a valid mask (clip or squash inside ``render``): searchers such as
    CMA-ES cannot be bounded, so all searchers share the unbounded space and ``initial_bounds``
    only says where the first population is drawn.
    """

    height: int
    width: int

    def bind(self, image: torch.Tensor) -> Encoding:
        """Attach the image ``(3, H, W)`` to explain; image-dependent encodings precompute here."""
        self.height, self.width = int(image.shape[-2]), int(image.shape[-1])
        return self

    @property
    @abstractmethod
    def genome_length(self) -> int:
        """Number of genes G (known after ``bind``)."""

    @property
    def initial_bounds(self) -> tuple[float, float]:
        """Range the first population's genes are drawn from."""
        return (0.0, 1.0)

    @abstractmethod
    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        """Masks ``(N, H, W)`` (float, values in [0, 1]) for genomes ``(N, G)``, in one vectorized call."""
