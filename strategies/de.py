"""Differential Evolution, DE/rand/1/bin, as in the DE-CAM paper's Algorithm 1 (evotorch has none)."""

from __future__ import annotations

from typing import Annotated

import torch
from evotorch import Problem, SolutionBatch
from evotorch.algorithms.searchalgorithm import SearchAlgorithm, SinglePopulationAlgorithmMixin

from decam.registry import SEARCHERS, Range


@SEARCHERS.register("de")
class DifferentialEvolution(SearchAlgorithm, SinglePopulationAlgorithmMixin):
    """Differential evolution (DE/rand/1/bin with greedy replacement), as in the DE-CAM paper.

    Each generation, every individual x gets a trial built from three distinct partners a, b, c ≠ x:
    gene i is ``a_i + F (b_i − c_i)`` with probability CR (and for one random gene always, the
    standard "bin" crossover), else ``x_i``; the trial replaces x when its fitness is strictly better.

    ``clip=True`` clips trial genes to the problem's initial bounds, as the paper clips genes.
    """

    def __init__(
        self,
        problem: Problem,
        popsize: Annotated[int, Range(4, 100000)] = 32,
        CR: Annotated[float, Range(0.0, 1.0)] = 0.2,
        F: Annotated[float, Range(0.0, 2.0, low_open=True)] = 0.8,
        clip: bool = True,
    ) -> None:
        problem.ensure_numeric()
        problem.ensure_single_objective()
        SearchAlgorithm.__init__(self, problem)
        self.popsize, self.CR, self.F, self.clip = int(popsize), float(CR), float(F), clip
        self._population = problem.generate_batch(self.popsize)
        self._evaluated = False
        SinglePopulationAlgorithmMixin.__init__(self)

    @property
    def population(self) -> SolutionBatch:
        return self._population

    def state_dict(self) -> dict:
        """The population and its fitness: all a resumed search needs besides the random state."""
        pop = self._population
        return {"values": pop.values.clone(), "evals": pop.evals.clone(), "evaluated": self._evaluated}

    def load_state_dict(self, state: dict) -> None:
        pop = SolutionBatch(self.problem, popsize=self.popsize, empty=True, device=self._population.device)
        pop.set_values(state["values"].to(pop.device))
        evals = state["evals"].to(pop.device)
        pop.set_evals(evals[:, 0], evals[:, 1:] if evals.shape[1] > 1 else None)
        self._population, self._evaluated = pop, bool(state["evaluated"])

    def partners(self) -> torch.Tensor:
        """``(N, 3)`` indices: per row three distinct individuals, none equal to the row's own index."""
        n = self.popsize
        keys = self.problem.make_uniform(n, n)
        keys.fill_diagonal_(-1.0)  # never pick yourself
        return keys.topk(3, dim=1).indices

    def trials(self, x: torch.Tensor) -> torch.Tensor:
        """DE/rand/1/bin trial vectors ``(N, G)`` for the population values ``x``."""
        n, g = x.shape
        p = self.partners()
        mutant = x[p[:, 0]] + self.F * (x[p[:, 1]] - x[p[:, 2]])
        cross = self.problem.make_uniform(n, g) < self.CR
        j_rand = self.problem.make_randint(n, n=g).long()
        cross[torch.arange(n, device=x.device), j_rand] = True
        trial = torch.where(cross, mutant, x)
        if self.clip:
            lo, hi = self.problem.initial_lower_bounds, self.problem.initial_upper_bounds
            trial = torch.maximum(torch.minimum(trial, hi), lo)
        return trial

    def _step(self) -> None:
        pop = self._population
        if not self._evaluated:
            self.problem.evaluate(pop)
            self._evaluated = True
        x = pop.values.clone()
        trial = SolutionBatch(self.problem, popsize=self.popsize, empty=True, device=x.device)
        trial.set_values(self.trials(x))
        self.problem.evaluate(trial)
        old, new = pop.evals.clone(), trial.evals.clone()
        sign = 1.0 if self.problem.senses[0] == "max" else -1.0
        better = (sign * (new[:, 0] - old[:, 0])) > 0
        nxt = SolutionBatch(self.problem, popsize=self.popsize, empty=True, device=x.device)
        nxt.set_values(torch.where(better[:, None], trial.values, x))
        evals = torch.where(better[:, None], new, old)
        nxt.set_evals(evals[:, 0], evals[:, 1:] if evals.shape[1] > 1 else None)
        self._population = nxt
