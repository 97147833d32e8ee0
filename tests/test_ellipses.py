"""The paper's ellipse encoding: geometry, limits and vectorized rendering."""

from __future__ import annotations

import pytest
import torch

from decam.encodings.ellipses import Ellipses
from reference_shapes import slow_render


def render(genes: list[list[float]], size: int = 64, **kw) -> torch.Tensor:
    enc = Ellipses(K=len(genes), **kw).bind(torch.zeros(3, size, size))
    return enc.render(torch.tensor([sum(genes, [])], dtype=torch.float32))[0]


def slow_reference(genome: torch.Tensor, K: int, H: int, W: int, lo: float, hi: float) -> torch.Tensor:
    return slow_render(genome, K, H, W, lo, hi, lambda u, v, a, b: (u / a) ** 2 + (v / b) ** 2 <= 1 + 1e-5)


def test_shape_dtype_and_binary_values():
    enc = Ellipses(K=10).bind(torch.zeros(3, 40, 56))
    masks = enc.render(torch.rand(7, enc.genome_length))
    assert masks.shape == (7, 40, 56) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert enc.genome_length == 50


def test_vectorized_matches_slow_reference():
    gen = torch.Generator().manual_seed(3)
    enc = Ellipses(K=3).bind(torch.zeros(3, 24, 32))
    genomes = torch.rand(4, 15, generator=gen) * 1.4 - 0.2  # includes out-of-range genes
    fast = enc.render(genomes)
    for n in range(4):
        ref = slow_reference(genomes[n], 3, 24, 32, 1 / 20, 1 / 4)
        assert (fast[n] != ref).sum() <= 2  # at most boundary pixels differ by rounding


def test_side_lengths_are_clipped_to_paper_limits():
    size = 80
    huge = render([[0.0, 0.0, 1.0, 1.0, 0.0]], size)  # box asks for the full image
    tiny = render([[0.5, 0.5, 0.5, 0.5, 0.0]], size)  # degenerate box
    assert huge.sum(0).max() <= size / 4 + 1 and huge.sum(1).max() <= size / 4 + 1  # ≤ H/4 wide and tall
    assert tiny.sum(0).max() >= size / 20 - 1 and tiny.sum(1).max() >= size / 20 - 1  # ≥ H/20
    assert huge.sum() > tiny.sum() > 0


def test_rotation_turns_the_ellipse():
    flat = render([[0.3, 0.45, 0.55, 0.55, 0.0]], 80)  # wide, short
    turned = render([[0.3, 0.45, 0.55, 0.55, 0.5]], 80)  # rotated by pi/2: tall, narrow
    rows = lambda m: int(m.any(1).sum())
    cols = lambda m: int(m.any(0).sum())
    assert cols(flat) > rows(flat) and rows(turned) > cols(turned)
    assert abs(flat.sum() - turned.sum()) <= 0.05 * flat.sum()  # same area


def test_mask_is_the_union_of_its_ellipses():
    a = [0.1, 0.1, 0.3, 0.3, 0.2]
    b = [0.6, 0.5, 0.8, 0.75, 0.7]
    union = render([a, b])
    assert torch.equal(union, torch.maximum(render([a]), render([b])))


@pytest.mark.parametrize("bad", [float("inf"), -1e30, 1e30])
def test_any_real_genome_gives_a_valid_mask(bad):
    enc = Ellipses(K=2).bind(torch.zeros(3, 32, 32))
    genomes = torch.full((3, 10), bad)
    masks = enc.render(genomes)
    assert torch.isfinite(masks).all() and masks.min() >= 0 and masks.max() <= 1


def test_min_side_above_max_side_is_rejected():
    with pytest.raises(ValueError, match="min_side"):
        Ellipses(min_side=0.5, max_side=0.2)
