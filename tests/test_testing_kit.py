"""The conformance kit catches the mistakes plugin authors make (and passes the built-ins elsewhere)."""

from __future__ import annotations

import random

import pytest
import torch
from evotorch import SolutionBatch

from decam.encodings.base import Encoding
from decam.testing import check_encoding, check_searcher
from decam_strategies.de import DifferentialEvolution


class Cells(Encoding):
    """A 4 × 4 grid of cells, each kept when its gene exceeds 0.5 (correct; broken variants below)."""

    genome_length = 16

    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        cells = (genomes > 0.5).to(genomes.dtype).reshape(-1, 1, 4, 4)
        return torch.nn.functional.interpolate(cells, size=(self.height, self.width), mode="nearest")[:, 0]


class Unclipped(Cells):
    def render(self, genomes):
        return super().render(genomes) * genomes.abs().clamp(max=1e3).amax(dim=1)[:, None, None]  # > 1


class NaNOnHuge(Cells):
    def render(self, genomes):
        return super().render(genomes) * (genomes.exp() * 0 + 1).amin(dim=1)[:, None, None]  # exp(huge) * 0 = NaN


class WrongShape(Cells):
    def render(self, genomes):
        return super().render(genomes)[:, None]


class IntegerMasks(Cells):
    def render(self, genomes):
        return super().render(genomes).bool()


class Random(Cells):
    def render(self, genomes):
        return super().render(genomes + 0.1 * torch.randn_like(genomes))


class BatchDependent(Cells):
    def render(self, genomes):
        return super().render(genomes - genomes.mean(dim=0) + 0.5)  # each mask depends on the whole batch


class InPlace(Cells):
    def render(self, genomes):
        return super().render(genomes.clamp_(0, 1))


class GrowingGenome(Cells):
    reads = 0

    @property
    def genome_length(self):
        self.reads += 1
        return 15 + self.reads


@pytest.mark.parametrize(
    "encoding, message",
    [
        (Unclipped, "left \\[0, 1\\]"),
        (NaNOnHuge, "NaN or infinite"),
        (WrongShape, "returned shape"),
        (IntegerMasks, "float dtype"),
        (Random, "not deterministic"),
        (BatchDependent, "alone differs from its batched mask"),
        (InPlace, "modified its input"),
        (GrowingGenome, "genome_length changed"),
    ],
)
def test_check_encoding_names_the_broken_promise(encoding, message):
    check_encoding(Cells)
    with pytest.raises(AssertionError, match=message):
        check_encoding(encoding)


def test_check_encoding_compares_two_instances_of_a_factory():
    seeds = iter(range(100))

    def factory():
        enc = Cells()
        offset = next(seeds) * 0.01
        enc.render = lambda g: Cells.render(enc, g + offset)
        return enc

    with pytest.raises(AssertionError, match="two Cells instances render different masks"):
        check_encoding(factory)


def unevaluated(problem, popsize: int = 8):
    """Steps without evaluating anything."""
    algo = DifferentialEvolution(problem, popsize=popsize)
    algo._step = lambda: None
    return algo


def unseeded(problem, popsize: int = 8):
    """Draws its first population from Python's unseeded global RNG: runs differ."""
    algo = DifferentialEvolution(problem, popsize=popsize)
    values = torch.tensor([[random.random() for _ in range(problem.solution_length)] for _ in range(popsize)])
    algo._population = SolutionBatch(problem, popsize=popsize, empty=True)
    algo._population.set_values(values)
    return algo


@pytest.mark.parametrize(
    "factory, message",
    [(unevaluated, "not fully evaluated"), (unseeded, "different populations")],
)
def test_check_searcher_names_the_broken_promise(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_searcher(factory, generations=3)
