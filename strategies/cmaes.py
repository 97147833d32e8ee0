"""CMA-ES searcher: evotorch's ``CMAES`` on decam's unbounded saliency problem."""

from __future__ import annotations

import warnings
from typing import Annotated

from evotorch import Problem
from evotorch.algorithms import CMAES

from decam.errors import SearchSpaceError
from decam.registry import SEARCHERS, Range


@SEARCHERS.register("cmaes")
def cmaes(
    problem: Problem,
    popsize: Annotated[int, Range(4, 100000)] = 32,
    stdev_init: Annotated[float, Range(0.0, None, low_open=True)] = 0.25,
    separable: bool = False,
    active: bool = True,
) -> CMAES:
    """Covariance matrix adaptation evolution strategy, evotorch's CMAES.

    Each generation costs ``popsize`` queries. The search starts from a random point of the
    encoding's initial bounds with step size ``stdev_init``; ``separable=True`` adapts only a
    diagonal covariance (cheaper for long genomes). CMAES refuses strictly bounded problems, which
    is why decam's problem declares initial bounds only and encodings accept any real genome.
    It needs at least two genes: evotorch 0.6.1's CMAES cannot hold a one-gene centre.
    """
    if problem.solution_length < 2:
        raise SearchSpaceError(
            f"searcher=cmaes needs at least 2 genes, and the encoding gave {problem.solution_length} for this image "
            "(evotorch's CMA-ES cannot search one gene): use searcher=de, ga, snes or pgpe, or an encoding with more genes")
    with warnings.catch_warnings():  # evotorch 0.6.1's constructor trips torch and NumPy 2 deprecation notices
        warnings.filterwarnings("ignore", "To copy construct from a tensor", UserWarning)
        warnings.filterwarnings("ignore", "__array_wrap__ must accept context", DeprecationWarning)
        return CMAES(problem, stdev_init=stdev_init, popsize=popsize, separable=separable, active=active)
