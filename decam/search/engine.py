"""The search loop: step a searcher until its generations or its query budget are spent."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from decam.search.problem import SaliencyProblem

if TYPE_CHECKING:
    from evotorch import SolutionBatch
    from evotorch.algorithms.searchalgorithm import SearchAlgorithm


def run_search(
    searcher: SearchAlgorithm,
    problem: SaliencyProblem,
    *,
    generations: int,
    budget: int | None = None,
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Step ``searcher`` for ``generations``, or — with ``budget`` — while the next generation,
    costing what the last one did, still fits in ``budget`` queries (the first always runs).

    Returns the history: per generation ``generation``, ``best``, ``mean``, ``median``,
    ``best_area`` and cumulative ``queries``; ``progress`` sees each entry as it is made.
    """
    history: list[dict] = []
    generation, last_cost = 0, 0
    while True:
        if budget is None and generation >= generations:
            break
        if budget is not None and generation > 0 and problem.queries + max(last_cost, 1) > budget:
            break
        before = problem.queries
        searcher.step()
        generation += 1
        last_cost = problem.queries - before
        history.append(summary(generation, searcher.population, problem.queries))
        if progress is not None:
            progress(history[-1])
    return history


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
