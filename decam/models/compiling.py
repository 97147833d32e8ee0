"""Optional ``torch.compile`` of the search's forward pass (config ``compile=true``).

Inductor fuses the model's element-wise work into its convolutions: EfficientNet-Lite0 ran 26 %
faster on a 2-core CPU (``experiments/bench_throughput.py --compile``) after a one-off compile of
tens of seconds, which pays off over many images, not for one. Where compiling fails (no C++ compiler, an op inductor cannot handle), the
search warns once and runs the model as it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn


class CompiledForward:
    """``module`` through ``torch.compile``, falling back to ``module`` itself if the first compiled
    call fails (the model's own errors still surface: the eager retry raises them)."""

    def __init__(self, module: nn.Module) -> None:
        self.eager = module
        self.forward: Callable[[torch.Tensor], torch.Tensor] = torch.compile(module)
        self.checked = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.checked:
            return self.forward(x)
        try:
            out = self.forward(x)
        except Exception as e:  # any compile failure: the eager model decides whether it was the model's fault
            out = self.eager(x)
            first = (str(e).strip().splitlines() or [""])[0][:200]
            warnings.warn(f"compile=true: torch.compile failed ({type(e).__name__}: {first}); "
                          "the search runs the model without compiling", RuntimeWarning, stacklevel=2)
            self.forward = self.eager
        self.checked = True
        return out
