"""The paper's Differential Evolution (DE/rand/1/bin) as an evotorch SearchAlgorithm."""

from __future__ import annotations

import torch
from evotorch import Problem

from decam_strategies.de import DifferentialEvolution


def sphere(seed: int = 0, n: int = 6) -> Problem:
    """Maximize -||x - 0.7||^2 in 6 dimensions, genes drawn from [0, 1]."""
    return Problem(
        "max",
        lambda x: -((x - 0.7) ** 2).sum(dim=-1),
        solution_length=n,
        initial_bounds=(0.0, 1.0),
        vectorized=True,
        seed=seed,
    )


def test_improves_the_best_fitness_on_a_toy_problem():
    de = DifferentialEvolution(sphere(), popsize=20)
    de.step()
    first = float(de.population.evals[:, 0].max())
    for _ in range(60):
        de.step()
    last = float(de.population.evals[:, 0].max())
    assert last > first and last > -1e-3


def test_greedy_replacement_never_worsens_any_individual():
    de = DifferentialEvolution(sphere(), popsize=12)
    de.step()
    before = de.population.evals[:, 0].clone()
    de.step()
    assert (de.population.evals[:, 0] >= before).all()


def test_partners_are_distinct_and_never_the_target():
    de = DifferentialEvolution(sphere(), popsize=5)
    for _ in range(50):
        p = de.partners()
        own = torch.arange(5).unsqueeze(1)
        assert (p != own).all()
        assert all(len(set(row.tolist())) == 3 for row in p)


def test_crossover_rate_is_respected():
    de = DifferentialEvolution(sphere(n=200), popsize=40, CR=0.3, clip=False)
    x = de.population.values.clone()
    trial = de.trials(x)
    crossed = (trial != x).float().mean().item()
    assert abs(crossed - 0.3) < 0.03


def test_differential_weight_is_respected(monkeypatch):
    de = DifferentialEvolution(sphere(), popsize=6, CR=1.0, F=0.5, clip=False)
    x = de.population.values.clone()
    fixed = torch.tensor([[1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1], [0, 1, 2]])
    monkeypatch.setattr(de, "partners", lambda: fixed)
    expected = x[fixed[:, 0]] + 0.5 * (x[fixed[:, 1]] - x[fixed[:, 2]])
    assert torch.allclose(de.trials(x), expected)


def test_clip_keeps_trials_inside_the_initial_bounds():
    de = DifferentialEvolution(sphere(), popsize=8, CR=1.0, F=2.0)
    trial = de.trials(de.population.values.clone())
    assert trial.min() >= 0.0 and trial.max() <= 1.0


def test_same_seed_same_search():
    runs = []
    for _ in range(2):
        de = DifferentialEvolution(sphere(seed=7), popsize=10)
        for _ in range(5):
            de.step()
        runs.append(de.population.values.clone())
    assert torch.equal(runs[0], runs[1])
