"""RISE (Petsiuk et al. 2018): random upsampled grid masks weighted by the target probability."""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F

from decam.evaluation.methods.base import METHODS, Budget, Fill, Method, PositiveInt, units_for_budget
from decam.models import LoadedModel
from decam.registry import Range


@METHODS.register("rise")
class Rise(Method):
    """RISE (Petsiuk et al. 2018): saliency = E[p_target(fill + M ⊙ (x − fill)) · M] / p over random masks M.

    Masks are a ``grid``² Bernoulli(``p``) grid, bilinearly upsampled and randomly shifted (the
    authors' code). ``fill``: ``zero`` (default, the authors' code: masked pixels are 0 in the
    model's *normalized* input, i.e. its mean colour; black for a model whose normalization is
    unknown, whose input is then the pixels themselves), ``black`` (pixel 0: ``M ⊙ x``, decam's
    RISE before fills existed) or ``blur`` (decam's blur fill). ``budget`` sets ``n_masks`` (one
    query each) when given.
    """

    def __init__(self, model: LoadedModel, n_masks: PositiveInt = 4000, grid: PositiveInt = 7,
                 p: Annotated[float, Range(0, 1, low_open=True)] = 0.5, batch_size: PositiveInt = 64,
                 seed: int = 0, fill: Fill = "zero", budget: Budget = None) -> None:
        super().__init__(model, budget)
        self.n_masks = units_for_budget(budget, 1, n_masks, "mask")
        self.grid, self.p, self.batch_size, self.seed, self.fill = grid, p, batch_size, seed, fill

    def masks(self, n: int, height: int, width: int, gen: torch.Generator) -> torch.Tensor:
        """``(n, H, W)`` soft masks: a ``grid``² Bernoulli(p) grid, bilinear upsampled, randomly shifted."""
        device = gen.device
        cell_h, cell_w = math.ceil(height / self.grid), math.ceil(width / self.grid)
        cells = (torch.rand(n, 1, self.grid, self.grid, generator=gen, device=device) < self.p).float()
        up = F.interpolate(cells, size=((self.grid + 1) * cell_h, (self.grid + 1) * cell_w),
                           mode="bilinear", align_corners=False)[:, 0]
        dy = torch.randint(0, cell_h, (n, 1), generator=gen, device=device)
        dx = torch.randint(0, cell_w, (n, 1), generator=gen, device=device)
        rows = (dy + torch.arange(height, device=device)).unsqueeze(2)
        cols = (dx + torch.arange(width, device=device)).unsqueeze(1)
        return up[torch.arange(n, device=device).view(n, 1, 1), rows, cols]

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        _, h, w = image.shape
        gen = torch.Generator(device=image.device).manual_seed(self.seed)
        perturb = self._perturber(image, self.fill)
        sal = torch.zeros(h, w, device=image.device)
        for first in range(0, self.n_masks, self.batch_size):
            m = self.masks(min(self.batch_size, self.n_masks - first), h, w, gen)
            probs = self._scores(perturb(m), target, "probability")
            sal += torch.einsum("n,nhw->hw", probs, m)
        return sal / (self.n_masks * self.p)
