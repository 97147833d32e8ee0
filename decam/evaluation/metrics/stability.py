"""Stability over seeds: how much a stochastic method's map, and its score, depend on its random seed.

A method is run with ``n_seeds`` seeds (0 … 4 by default) on the same image and target; the report is the
mean Spearman rank correlation over all pairs of maps (higher is steadier; 1 for a deterministic method)
and the sample standard deviation of their DiffAUC under the suite's insertion / deletion substrates
(lower is steadier). A DiffAUC gap between two methods smaller than this spread is not a ranking.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from decam.evaluation.metrics.sanity import MapFn, spearman


@dataclass
class StabilityScores:
    seeds: tuple[int, ...]
    spearman: float
    """Mean pairwise Spearman correlation of the maps."""
    diff_std: float
    """Sample standard deviation of DiffAUC over the seeds (AUC units, [0, 1])."""
    diffs: tuple[float, ...]


def stability(factory: Callable[[int], MapFn], image: torch.Tensor, target: int,
              diffauc: Callable[[np.ndarray], float], *, n_seeds: int = 5) -> StabilityScores:
    """Run ``factory(seed)`` — the method built with that seed — for seeds ``0 … n_seeds − 1``; ``diffauc``
    scores one map. Torch's global generator is also seeded per run (under ``fork_rng``), for methods
    that draw from it."""
    if n_seeds < 2:
        raise ValueError("stability needs at least 2 seeds")
    maps, diffs = [], []
    for seed in range(n_seeds):
        with torch.random.fork_rng(devices=[image.device] if image.device.type == "cuda" else []):
            torch.manual_seed(seed)
            maps.append(np.asarray(factory(seed)(image, target), dtype=np.float32))
        diffs.append(float(diffauc(maps[-1])))
    pairs = [spearman(a, b) for a, b in itertools.combinations(maps, 2)]
    return StabilityScores(tuple(range(n_seeds)), float(np.mean(pairs)), float(np.std(diffs, ddof=1)), tuple(diffs))
