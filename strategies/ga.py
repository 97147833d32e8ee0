"""Genetic algorithm searcher: evotorch's ``GeneticAlgorithm`` with real-valued operators."""

from __future__ import annotations

from typing import Annotated

from evotorch import Problem
from evotorch.algorithms import GeneticAlgorithm
from evotorch.operators import GaussianMutation, SimulatedBinaryCrossOver

from decam.registry import SEARCHERS, Range


@SEARCHERS.register("ga")
def ga(
    problem: Problem,
    popsize: Annotated[int, Range(4, 100000)] = 32,
    tournament_size: Annotated[int, Range(1, 100000)] = 4,
    eta: Annotated[float, Range(0.0, None, low_open=True)] = 10.0,
    mutation_stdev: Annotated[float, Range(0.0, None)] = 0.3,
    mutation_probability: Annotated[float, Range(0.0, 1.0)] = 0.1,
    elitist: bool = True,
) -> GeneticAlgorithm:
    """Genetic algorithm with simulated binary crossover and Gaussian mutation, from evotorch.

    Parents are picked by tournaments of ``tournament_size``; SBX with distribution index ``eta``
    makes ``popsize`` children, then each gene mutates with ``mutation_probability`` by Gaussian
    noise of ``mutation_stdev``. ``elitist=True`` keeps the best ``popsize`` of parents and
    children. Fitness is deterministic, so parents are not re-evaluated: the first generation
    costs ``2 * popsize`` queries, later ones ``popsize``. (evotorch's PolynomialMutation needs
    strict bounds, which decam's problem does not declare.)
    """
    operators = [
        SimulatedBinaryCrossOver(problem, tournament_size=tournament_size, eta=eta),
        GaussianMutation(problem, stdev=mutation_stdev, mutation_probability=mutation_probability),
    ]
    return GeneticAlgorithm(problem, operators=operators, popsize=popsize, elitist=elitist, re_evaluate=False)
