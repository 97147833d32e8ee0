"""Sobol attribution (Fel et al., NeurIPS 2021): total-order Sobol indices of grid cells, by QMC and Jansen."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from decam.errors import ConfigError
from decam.evaluation.methods.base import METHODS, Budget, Fill, Method, PositiveInt, Score, units_for_budget
from decam.models import LoadedModel


def sobol_designs(dim: int, n: int, scramble: bool = False, seed: int = 0) -> np.ndarray:
    """The replicated design ``[A; B; C_1; …; C_dim]``, shape ``(n · (dim + 2), dim)`` in [0, 1).

    ``A`` and ``B`` are the two halves of ``n`` points of a ``2 · dim``-dimensional Sobol sequence
    (scipy's, unscrambled by default as in the authors' code); ``C_i`` is ``A`` with column ``i``
    taken from ``B`` (Saltelli's "radial" design). ``n`` a power of two keeps the sequence balanced.
    """
    from scipy.stats import qmc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's advice to draw a power of two
        ab = qmc.Sobol(2 * dim, scramble=scramble, rng=np.random.default_rng(seed)).random(n)
    a, b = ab[:, :dim], ab[:, dim:]
    c = np.repeat(a[None], dim, axis=0)
    idx = np.arange(dim)
    c[idx, :, idx] = b.T
    return np.concatenate([a, b, c.reshape(dim * n, dim)]).astype(np.float32)


def jansen_total_indices(outputs: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """Total-order Sobol indices from outputs on :func:`sobol_designs` (same order), shape ``(dim,)``.

    Jansen's estimator (Jansen 1999; Saltelli et al. 2010, table 2 (f)), as the authors compute it::

        S_Ti = Σ_j (f(A)_j − f(C_i)_j)² / (2 n · V),   V = sample variance of f(A) (ddof 1)

    ``S_Ti`` is the share of the output's variance that involves input ``i``, interactions included.
    A constant output (V = 0) gives zeros.
    """
    f = outputs.double()
    fa, fc = f[:n], f[2 * n:].view(dim, n)
    var = fa.var(unbiased=True)
    if not var > 0:
        return torch.zeros(dim, dtype=torch.float64, device=f.device)
    return ((fa - fc) ** 2).sum(1) / (2 * n * var)


@METHODS.register("sobol")
class Sobol(Method):
    """Sobol attribution (Fel et al. 2021, "Look at the Variance!"): real-valued ``grid``² masks from a
    quasi-Monte-Carlo Sobol design perturb the image by inpainting, ``fill + M ⊙ (x − fill)`` (the
    paper's ``x ⊙ M`` with a baseline; masks nearest-upsampled), and each cell's total-order Sobol
    index of the target ``score`` (:func:`jansen_total_indices`) is its saliency, bicubically
    upsampled as the authors do.

    Cost = ``designs`` × (``grid``² + 2) queries: 32 × 51 = 1,632 at the defaults; ``budget`` sets
    ``designs`` = budget // (grid² + 2) (at least 2). ``fill`` defaults to ``zero`` (0 in the model's
    normalized input, the paper's inpainting baseline); ``score`` to the logit (the authors' code
    reads the model's raw output).
    """

    def __init__(self, model: LoadedModel, grid: PositiveInt = 7, designs: PositiveInt = 32, fill: Fill = "zero",
                 score: Score = "logit", scramble: bool = False, seed: int = 0, batch_size: PositiveInt = 64,
                 budget: Budget = None) -> None:
        super().__init__(model, budget)
        dim = grid * grid
        self.designs = units_for_budget(budget, dim + 2, designs, f"Sobol design at grid {grid}")
        if self.designs < 2:
            raise ConfigError(f"sobol needs at least 2 designs (budget >= {2 * (dim + 2)} at grid {grid})")
        self.grid, self.fill, self.score, self.batch_size = grid, fill, score, batch_size
        self.masks = torch.from_numpy(sobol_designs(dim, self.designs, scramble, seed)).view(-1, 1, grid, grid)

    def attribute(self, image: torch.Tensor, target: int) -> torch.Tensor:
        _, h, w = image.shape
        perturb = self._perturber(image, self.fill)
        outs = []
        for chunk in self.masks.to(image.device).split(self.batch_size):
            m = F.interpolate(chunk, size=(h, w), mode="nearest")[:, 0]
            outs.append(self._scores(perturb(m), target, self.score))
        sti = jansen_total_indices(torch.cat(outs), self.designs, self.grid**2).float()
        return F.interpolate(sti.view(1, 1, self.grid, self.grid), size=(h, w), mode="bicubic",
                             align_corners=False)[0, 0]
