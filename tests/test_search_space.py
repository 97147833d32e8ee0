"""Degenerate search spaces: superpixels on noise still give a search space (or a one-line error),
and every searcher handles a one-gene genome or says why not."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import decam
from decam.cli import main
from decam.encodings.base import Encoding
from decam.encodings.superpixels import Superpixels, grid_segments
from decam.errors import ConfigError, DecamWarning, SearchSpaceError
from decam.io.images import to_input
from decam.registry import ENCODINGS

RUN = ["--model", "tiny_models:tiny", "--generations", "2", "--popsize", "8", "batch_size=8", "--quiet"]


def noise_photo(side: int = 64, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8))


def bound(n_segments: int, size=(48, 48), resize=None) -> Superpixels:
    x = to_input(noise_photo(), size, resize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecamWarning)
        return Superpixels(n_segments=n_segments).bind(x)


@pytest.mark.parametrize("size, resize", [((48, 48), None), ((224, 224), 256)])
@pytest.mark.parametrize("n", [2, 10, 50, 200])
def test_superpixels_on_noise_give_at_least_half_the_segments(n, size, resize):
    """Plain SLIC merges a 64x64 noise photo into one segment; bind must not settle for that."""
    enc = bound(n, size, resize)
    assert enc.genome_length >= max(2, -(-n // 2)), (enc.segmentation, enc.genome_length)
    masks = enc.render(torch.rand(4, enc.genome_length))
    assert masks.shape == (4, *size) and set(masks.unique().tolist()) <= {0.0, 1.0}


def test_a_workaround_is_said_once_as_a_warning():
    x = to_input(noise_photo(), (48, 48), None)
    with pytest.warns(DecamWarning, match=r"SLIC gave 1 segment\(s\) of the 50 asked for"):
        enc = Superpixels(n_segments=50).bind(x)
    assert enc.segmentation != "slic"


def test_a_textured_photo_keeps_plain_slic_without_a_warning():
    yy, xx = np.mgrid[0:48, 0:48]
    smooth = np.stack([xx * 5, yy * 5, (xx + yy) * 2], -1).astype(np.uint8)  # a gradient: SLIC's home ground
    with warnings.catch_warnings():
        warnings.simplefilter("error", DecamWarning)
        enc = Superpixels(n_segments=20).bind(to_input(Image.fromarray(smooth), (48, 48), None))
    assert enc.segmentation == "slic" and enc.genome_length >= 10


def test_the_grid_fallback_has_the_cells_asked_for():
    labels = grid_segments(48, 64, 50)
    assert labels.shape == (48, 64) and 50 <= labels.max() + 1 <= 60
    assert grid_segments(4, 4, 1000).max() + 1 == 16  # never more cells than pixels


def test_more_segments_than_the_input_can_hold_is_a_search_space_error():
    with pytest.raises(SearchSpaceError, match=r"48x48 model input holds at most 2304 segments.*at most 4608"):
        bound(10000)
    assert issubclass(SearchSpaceError, ConfigError)  # exit code 2, and a batch stops before the next image
    assert decam.SearchSpaceError is SearchSpaceError


def test_the_cli_says_it_in_one_line_with_exit_2(tmp_path, capsys):
    noise_photo().save(tmp_path / "noise.png")
    rc = main(["explain", str(tmp_path / "noise.png"), "encoding=superpixels", "encoding.n_segments=10000",
               "--out", str(tmp_path / "out"), *RUN])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("decam: error: encoding=superpixels: a 48x48 model input")
    assert not list((tmp_path / "out").glob("*.npy"))


@pytest.mark.parametrize("searcher", ["de", "cmaes", "ga", "snes", "pgpe"])
def test_superpixels_on_a_64px_noise_photo_with_every_searcher(searcher, tmp_path, capsys):
    """The case that gave a one-segment map (DE) and a traceback (CMA-ES)."""
    noise_photo().save(tmp_path / "noise.png")
    rc = main(["explain", str(tmp_path / "noise.png"), "encoding=superpixels", f"searcher={searcher}",
               "aggregator=paper", "--out", str(tmp_path / "out"), *RUN[:-1]])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "decam: warning: encoding=superpixels: SLIC gave" in err and "Traceback" not in err
    saliency = np.load(tmp_path / "out" / "noise.saliency.npy")
    assert np.isfinite(saliency).all() and len(np.unique(saliency)) > 1  # not one segment's flat map


@ENCODINGS.register("one-gene-test")
class OneGene(Encoding):
    """The whole image kept or removed by one gene."""

    genome_length = 1

    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        keep = (genomes[:, :1, None] > 0.5).to(genomes.dtype)
        return keep.expand(-1, self.height, self.width).clone()


def brightness(x: torch.Tensor) -> torch.Tensor:
    m = x.mean(dim=(1, 2, 3))
    return torch.stack([m, -m], dim=1)


@pytest.mark.parametrize("searcher", ["de", "ga", "snes", "pgpe"])
def test_searchers_search_a_one_gene_genome(searcher):
    exp = decam.explain(brightness, torch.rand(3, 32, 32), target=0, encoding="one-gene-test", searcher=searcher,
                        popsize=8, generations=3, fill="black", aggregator="paper")
    assert exp.saliency.shape == (32, 32) and np.isfinite(exp.saliency).all()
    assert exp.history[-1]["best"] >= exp.history[0]["best"] - 1e-6


def test_cmaes_says_why_it_cannot_search_one_gene():
    with pytest.raises(SearchSpaceError, match=r"searcher=cmaes needs at least 2 genes.*gave 1"):
        decam.explain(brightness, torch.rand(3, 32, 32), target=0, encoding="one-gene-test", searcher="cmaes",
                      popsize=8, generations=2)
