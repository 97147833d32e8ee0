"""HSIC attribution (Novello et al., NeurIPS 2022): dependence between each grid cell and the output."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from decam.errors import ConfigError
from decam.evaluation.methods.base import METHODS, Budget, Fill, Method, PositiveInt, Score, units_for_budget
from decam.models import LoadedModel

SIGMA_SAMPLES = 2048
"""Outputs whose pairwise distances set the RBF width (all of them up to this many)."""


def binary_design(dim: int, n: int, sampler: str = "lhs", seed: int = 0) -> np.ndarray:
    """``n`` binary masks over ``dim`` cells, ``(n, dim)`` in {0, 1}: an ``n``-point Latin hypercube (the
    paper; its code draws ``n / 2`` points in ``2 · dim`` dimensions) or an unscrambled Sobol sequence
    (xplique's default), rounded."""
    from scipy.stats import qmc

    if sampler == "lhs":
        points = qmc.LatinHypercube(dim, rng=np.random.default_rng(seed)).random(n)
    else:
        points = qmc.Sobol(dim, scramble=False).random(n)
    return np.round(points).astype(np.float32)


def hsic_scores(masks: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """HSIC between each binary input ``masks[:, i]`` (``(n, dim)``) and ``outputs`` ``(n,)`` → ``(dim,)``.

    The biased estimator of Gretton et al. (2005) that the paper uses,
    ``HSIC_i = tr(K_i H L H) / (n − 1)²`` with ``H = I − 11ᵀ/n``, the paper's kernel for a binary
    input, the Dirac kernel ``K_i(x, x') = δ(x = x')`` (xplique's ``1 + ½ − (x − x')²`` differs by a
    constant, which ``H`` removes), and an RBF kernel on the output,
    ``L = exp(−(y − y')² / (2σ²))``. σ is the median of the pairwise distances ``|y − y'|`` (the
    median heuristic; the authors' code takes the median of ``y`` itself, which is not invariant to
    shifting the output and degenerates for a logit near 0). ``HLH`` has zero row sums, so for binary
    ``x_i``: ``tr(K_i HLH) = 2 · x_iᵀ (HLH) x_i`` — every cell at once in O(n² · dim), no ``K_i`` formed.
    """
    x, y = masks.double(), outputs.double()
    n = y.shape[0]
    sigma = torch.pdist(y[:SIGMA_SAMPLES, None]).median()  # the first outputs suffice for a median
    if not sigma > 0:  # mostly equal outputs: any positive width orders the cells the same way
        sigma = (y.max() - y.min()) if y.max() > y.min() else torch.ones((), dtype=y.dtype, device=y.device)
    gram = (y[:, None] - y[None, :]).square_().div_(-2 * sigma**2).exp_()  # one n × n buffer, edited in place
    rows, cols, total = gram.mean(0, keepdim=True), gram.mean(1, keepdim=True), gram.mean()
    centred = gram.sub_(rows).sub_(cols).add_(total)
    return 2 * ((centred @ x) * x).sum(0) / (n - 1) ** 2


@METHODS.register("hsic")
class Hsic(Method):
    """HSIC attribution (Novello et al. 2022, "Making Sense of Dependence"): ``designs`` binary
    ``grid``² masks (Latin hypercube by default, as in the paper) perturb the image by inpainting,
    ``fill + M ⊙ (x − fill)`` (masks nearest-upsampled), and each cell's saliency is the HSIC
    between its on/off state and the target ``score`` (:func:`hsic_scores`), bicubically upsampled.

    Cost = ``designs`` queries (1,500 at the default, the paper's choice); ``budget`` sets
    ``designs``. ``fill`` defaults to ``zero`` (0 in the model's normalized input); ``score`` to the
    logit (xplique reads the model's raw output).
    """

    def __init__(self, model: LoadedModel, grid: PositiveInt = 7, designs: PositiveInt = 1500,
                 sampler: Literal["lhs", "sobol"] = "lhs", fill: Fill = "zero", score: Score = "logit",
                 seed: int = 0, batch_size: PositiveInt = 64, budget: Budget = None) -> None:
        super().__init__(model, budget)
        self.designs = units_for_budget(budget, 1, designs, "HSIC design")
        if self.designs < 2:
            raise ConfigError("hsic needs at least 2 designs (budget >= 2)")
        self.grid, self.fill, self.score, self.batch_size = grid, fill, score, batch_size
        self.masks = torch.from_numpy(binary_design(grid * grid, self.designs, sampler, seed))

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        _, h, w = image.shape
        perturb = self._perturber(image, self.fill)
        masks = self.masks.to(image.device)
        outs = []
        for chunk in masks.view(-1, 1, self.grid, self.grid).split(self.batch_size):
            m = F.interpolate(chunk, size=(h, w), mode="nearest")[:, 0]
            outs.append(self._scores(perturb(m), target, self.score))
        scores = hsic_scores(masks, torch.cat(outs)).float()
        return F.interpolate(scores.view(1, 1, self.grid, self.grid), size=(h, w), mode="bicubic",
                             align_corners=False)[0, 0]
