"""SNES searcher: evotorch's separable natural evolution strategy."""

from __future__ import annotations

from typing import Annotated, Optional

from evotorch import Problem
from evotorch.algorithms import SNES

from decam.registry import SEARCHERS, Range


@SEARCHERS.register("snes")
def snes(
    problem: Problem,
    popsize: Annotated[int, Range(4, 100000)] = 32,
    stdev_init: Annotated[float, Range(0.0, None, low_open=True)] = 0.25,
    center_learning_rate: Annotated[float, Range(0.0, None, low_open=True)] = 1.0,
    stdev_learning_rate: Annotated[Optional[float], Range(0.0, None, low_open=True)] = None,
) -> SNES:
    """Separable natural evolution strategy, evotorch's SNES.

    A diagonal Gaussian moved by natural-gradient steps; each generation costs ``popsize``
    queries. ``stdev_learning_rate=None`` uses SNES's standard rate for the genome length.
    """
    return SNES(
        problem,
        popsize=popsize,
        stdev_init=stdev_init,
        center_learning_rate=center_learning_rate,
        stdev_learning_rate=stdev_learning_rate,
    )
