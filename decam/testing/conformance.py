"""Conformance kit for plugin authors: ``check_encoding`` and ``check_searcher``.

Run them on your own plugin (e.g. in a pytest test) before registering it; they raise
``AssertionError`` naming the broken promise. Both work without any real model: the
:class:`~decam.testing.oracles.SquareOracle` black box scores how much of a hidden square a mask
keeps, so a working search must find that square.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from evotorch import SolutionBatch

from decam.encodings.base import Encoding
from decam.search.problem import SaliencyProblem
from decam.testing.oracles import SquareOracle, oracle_image


def oracle_problem(
    encoding: Encoding, *, size: int = 48, seed: int | None = 0, device: str | torch.device = "cpu", alpha: float = 1.0
) -> SaliencyProblem:
    """A :class:`SaliencyProblem` on :func:`oracle_image` scored by :class:`SquareOracle` (target 0)."""
    image = oracle_image(size).to(device)
    return SaliencyProblem(
        SquareOracle(image), image, 0, encoding.bind(image), alpha=alpha, channels_last=False, seed=seed
    )


def _instance(encoding_or_factory: Encoding | Callable[[], Encoding]) -> Encoding:
    enc = encoding_or_factory if isinstance(encoding_or_factory, Encoding) else encoding_or_factory()
    assert isinstance(enc, Encoding), f"expected a decam Encoding, got {type(enc).__name__}"
    return enc


def extreme_genomes(length: int, low: float, high: float, n: int = 16, seed: int = 0) -> torch.Tensor:
    """Genomes a searcher may produce: draws from the initial bounds, wide Gaussians, and extremes."""
    gen = torch.Generator().manual_seed(seed)
    big = torch.finfo(torch.float32).max
    rows = [
        low + (high - low) * torch.rand(n, length, generator=gen),
        1e3 * torch.randn(n, length, generator=gen),
        torch.full((1, length), low),
        torch.full((1, length), high),
        torch.zeros(1, length),
        torch.full((1, length), -1.0),
        torch.full((1, length), big),
        torch.full((1, length), -big),
        torch.full((1, length), 1e-38),
        big * torch.sign(torch.randn(2, length, generator=gen)),
    ]
    return torch.cat(rows).float()


def _render(enc: Encoding, genomes: torch.Tensor, what: str) -> torch.Tensor:
    try:
        with torch.inference_mode():
            return enc.render(genomes)
    except Exception as e:
        raise AssertionError(f"{type(enc).__name__}.render() raised {type(e).__name__} on {what}: {e}") from e


def check_encoding(
    encoding_or_factory: Encoding | Callable[[], Encoding],
    image: torch.Tensor | None = None,
    *,
    device: str | torch.device = "cpu",
    n: int = 16,
    seed: int = 0,
) -> None:
    """Check the :class:`~decam.encodings.base.Encoding` contract; raise ``AssertionError`` on a breach.

    Pass the class (or any zero-argument factory) to also check that two instances agree.
    Checked: ``bind`` returns the encoding; ``genome_length`` is a stable positive int;
    ``initial_bounds`` are finite with low < high; for draws from the bounds, wide Gaussians and
    huge, tiny or negative genes, ``render`` gives ``(N, H, W)`` finite floats in [0, 1] on the
    genomes' device, leaves its input alone, is deterministic, and renders each row independently.
    """
    image = (oracle_image() if image is None else image).to(device)
    h, w = image.shape[-2:]
    enc = _instance(encoding_or_factory)
    name = type(enc).__name__
    bound = enc.bind(image)
    assert bound is enc, f"{name}.bind() must return the encoding itself (got {bound!r})"
    g = enc.genome_length
    assert isinstance(g, int) and g > 0, f"{name}.genome_length must be a positive int, got {g!r}"
    assert enc.genome_length == g, f"{name}.genome_length changed between two reads"
    low, high = (float(v) for v in enc.initial_bounds)
    assert torch.isfinite(torch.tensor([low, high])).all() and low < high, (
        f"{name}.initial_bounds must be finite with low < high, got {(low, high)}"
    )
    genomes = extreme_genomes(g, low, high, n, seed).to(device)
    original = genomes.clone()
    masks = _render(enc, genomes, "genomes")
    again = _render(enc, genomes.clone(), "the same genomes again")
    singles = [_render(enc, genomes[i : i + 1], f"genome {i} alone") for i in (0, n, genomes.shape[0] - 1)]
    assert torch.equal(genomes, original), f"{name}.render() modified its input genomes"
    assert isinstance(masks, torch.Tensor), f"{name}.render() must return a tensor, got {type(masks).__name__}"
    want = (genomes.shape[0], h, w)
    assert tuple(masks.shape) == want, f"{name}.render() returned shape {tuple(masks.shape)}, expected {want}"
    assert masks.is_floating_point(), f"{name}.render() returned dtype {masks.dtype}, expected a float dtype"
    assert masks.device == genomes.device, f"{name}.render() returned masks on {masks.device}, genomes on {genomes.device}"
    assert torch.isfinite(masks).all(), f"{name}.render() returned NaN or infinite mask values"
    bad = ((masks < 0) | (masks > 1)).any(dim=(1, 2)).nonzero().flatten()
    assert bad.numel() == 0, f"{name}.render() left [0, 1] for genomes {genomes[bad[0]].tolist()[:10]}..."
    assert torch.equal(masks, again), f"{name}.render() is not deterministic"
    for i, single in zip((0, n, genomes.shape[0] - 1), singles):
        assert torch.equal(single[0], masks[i]), f"{name}.render() of genome {i} alone differs from its batched mask"
    if not isinstance(encoding_or_factory, Encoding):
        other = _instance(encoding_or_factory).bind(image)
        assert other.genome_length == g, f"two {name} instances disagree on genome_length"
        assert torch.equal(_render(other, genomes, "genomes"), masks), f"two {name} instances render different masks"


def _run_searcher(factory: Callable, params: dict, encoding: Encoding, generations: int, seed: int, device) -> dict:
    problem = oracle_problem(encoding, seed=seed, device=device)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        searcher = factory(problem, **params)
        name = getattr(factory, "__name__", type(searcher).__name__)
        best, queries = [], []
        for generation in range(1, generations + 1):
            before = problem.queries
            searcher.step()
            pop = searcher.population
            assert isinstance(pop, SolutionBatch), f"{name}: .population is {type(pop).__name__}, not a SolutionBatch"
            assert len(pop) > 0 and pop.values.shape[1] == problem.solution_length, (
                f"{name}: population values have shape {tuple(pop.values.shape)}"
            )
            assert torch.isfinite(pop.evals[:, 0]).all(), (
                f"{name}: population is not fully evaluated after step {generation}"
            )
            assert problem.queries > before, f"{name}: step {generation} sent no query to the model"
            best.append(float(pop.evals[:, 0].max()))
            queries.append(problem.queries)
    return {"best": best, "queries": queries, "values": pop.values.clone(), "evals": pop.evals.clone()}


def check_searcher(
    factory: Callable,
    params: dict[str, Any] | None = None,
    *,
    encoding: Encoding | None = None,
    generations: int = 12,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict:
    """Check a searcher factory ``(problem, **params) -> SearchAlgorithm`` on the oracle problem.

    Checked: after every ``step()`` the ``population`` is an evaluated ``SolutionBatch`` of full
    genomes and the step queried the model; the best fitness of the last population is at least
    that of the first; the same seed gives the same final population. Returns the first run's
    per-generation ``best`` fitness and cumulative ``queries``.
    """
    from decam.encodings.ellipses import Ellipses

    params = dict(params or {})
    enc = encoding if encoding is not None else Ellipses(K=4, min_side=0.1, max_side=0.4)
    first = _run_searcher(factory, params, enc, generations, seed, device)
    name = getattr(factory, "__name__", "searcher")
    assert first["best"][-1] >= first["best"][0], (
        f"{name}: best fitness fell from {first['best'][0]:.4f} to {first['best'][-1]:.4f} over {generations} generations"
    )
    second = _run_searcher(factory, params, enc, generations, seed, device)
    same = torch.equal(first["values"], second["values"]) and torch.equal(first["evals"], second["evals"])
    assert same, f"{name}: two runs with seed {seed} ended in different populations"
    return {"best": first["best"], "queries": first["queries"]}
