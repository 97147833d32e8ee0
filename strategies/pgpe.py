"""PGPE searcher: evotorch's policy-gradients-with-parameter-exploration strategy with ClipUp."""

from __future__ import annotations

from typing import Annotated, Optional

from evotorch import Problem
from evotorch.algorithms import PGPE

from decam.registry import SEARCHERS, Range


@SEARCHERS.register("pgpe")
def pgpe(
    problem: Problem,
    popsize: Annotated[int, Range(4, 100000)] = 32,
    stdev_init: Annotated[float, Range(0.0, None, low_open=True)] = 0.25,
    center_learning_rate: Annotated[float, Range(0.0, None, low_open=True)] = 0.075,
    stdev_learning_rate: Annotated[float, Range(0.0, None, low_open=True)] = 0.1,
    max_speed: Annotated[Optional[float], Range(0.0, None, low_open=True)] = None,
) -> PGPE:
    """Policy gradients with parameter-based exploration, evotorch's PGPE with the ClipUp optimizer.

    Samples are mirrored pairs around the centre, so an odd ``popsize`` is rounded up to the next
    even number; each generation costs that many queries. ClipUp moves the centre by at most
    ``max_speed`` per generation (None: twice ``center_learning_rate``).
    """
    return PGPE(
        problem,
        popsize=popsize + popsize % 2,
        stdev_init=stdev_init,
        center_learning_rate=center_learning_rate,
        stdev_learning_rate=stdev_learning_rate,
        optimizer="clipup",
        optimizer_config=None if max_speed is None else {"max_speed": max_speed},
    )
