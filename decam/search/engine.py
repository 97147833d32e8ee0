"""The search loop: step a searcher until its generations or query budget are spent, or its map has converged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from decam.search.problem import SaliencyProblem

if TYPE_CHECKING:
    from evotorch import SolutionBatch
    from evotorch.algorithms.searchalgorithm import SearchAlgorithm


@dataclass(frozen=True)
class StopRule:
    """When a search stops: after ``generations``; with ``budget``, before a generation that would
    exceed it; with ``converge``, as soon as the map has settled, but never before ``min_generations``.

    Settled means: the rank correlation (Spearman, on the map pooled 4× for robustness to single
    pixels) between the current map and the map of ``lag`` × the generations ago is at least
    ``converge`` at ``patience`` consecutive generations. Comparing with an earlier map, not the
    previous one, matters: an estimate over all queries changes little per generation even while
    it is still drifting.
    """

    generations: int
    budget: int | None = None
    converge: float | None = None
    min_generations: int = 10
    lag: float = 0.25
    patience: int = 2


@dataclass
class SearchLog:
    """What the loop knows between generations (a checkpoint restores it): the history and, when
    converging, the map snapshots pooled for the rank correlation."""

    history: list[dict] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)
    settled: int = 0
    """Consecutive latest generations whose correlation reached the threshold (see StopRule)."""


def run_search(
    searcher: SearchAlgorithm,
    problem: SaliencyProblem,
    rule: StopRule,
    *,
    estimate: Callable[[], torch.Tensor] | None = None,
    progress: Callable[[dict], None] | None = None,
    log: SearchLog | None = None,
    after_generation: Callable[[SearchLog], None] | None = None,
) -> tuple[list[dict], str]:
    """Step ``searcher`` until ``rule`` says stop. ``estimate()`` is the current map (needed for
    ``rule.converge``). Returns the history — per generation ``generation``, ``best``, ``mean``,
    ``median``, ``best_area``, cumulative ``queries`` and, when converging, ``correlation`` — and why
    it stopped: ``generations``, ``budget`` or ``converged``. The same seed stops at the same generation.

    ``log`` continues a search a checkpoint restored; ``after_generation(log)`` runs after each
    generation (to save one)."""
    log = log if log is not None else SearchLog()
    history, snapshots = log.history, log.snapshots
    while True:
        generation = len(history)
        if generation and log.settled >= rule.patience and generation >= rule.min_generations:
            return history, "converged"
        if rule.budget is None and generation >= rule.generations:
            return history, "generations"
        last_cost = history[-1]["queries"] - (history[-2]["queries"] if generation > 1 else 0) if generation else 0
        if rule.budget is not None and generation > 0 and problem.queries + max(last_cost, 1) > rule.budget:
            return history, "budget"
        searcher.step()
        generation += 1
        history.append(summary(generation, searcher.population, problem.queries))
        if rule.converge is not None and estimate is not None:
            snapshots.append(F.avg_pool2d(estimate()[None, None].float(), 4).flatten())
            if generation > 1:  # snapshots[k] is the map after generation k + 1
                earlier = snapshots[min(round((1 - rule.lag) * generation), generation - 1) - 1]
                history[-1]["correlation"] = spearman(snapshots[-1], earlier)
                log.settled = log.settled + 1 if history[-1]["correlation"] >= rule.converge else 0
        if after_generation is not None:
            after_generation(log)
        if progress is not None:
            progress(history[-1])


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Rank correlation of two flat tensors (tied values share their mean rank); 0 if either is constant."""
    from scipy.stats import rankdata

    ra, rb = (torch.as_tensor(rankdata(t.cpu().numpy())) for t in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(ra.norm() * rb.norm())
    return float(ra @ rb) / denominator if denominator > 0 else 0.0


def summary(generation: int, population: SolutionBatch, queries: int) -> dict:
    """One history entry: the population's fitness statistics after ``generation``."""
    evals = population.evals
    fitness = evals[:, 0]
    best = int(fitness.argmax())
    return {
        "generation": generation,
        "best": float(fitness[best]),
        "mean": float(fitness.mean()),
        "median": float(fitness.median()),
        "best_area": float(evals[best, 1]) if evals.shape[1] > 1 else float("nan"),
        "queries": queries,
    }
