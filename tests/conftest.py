"""Shared test fixtures: tiny black-box models whose evidence region is known."""

from __future__ import annotations

import pytest
import torch

from decam.config import config_dir, load_config

PAPER_CONFIG = config_dir() / "paper.yaml"
"""The paper's algorithm (black fill, ellipses up to H/4, the 2/3-of-mean rule): what the oracle
tests exercise, whatever decam's default configuration is."""


def paper_config(*overrides: str):
    """The paper's settings at the default population size, plus ``overrides``."""
    return load_config(PAPER_CONFIG, ["searcher.popsize=32", *overrides])


class OracleModel:
    """Black box whose class-0 logit is ``scale`` × the kept fraction of a hidden box region.

    Every pixel of the test image is bright, so black (zero) fill removes evidence exactly where
    the mask removes pixels. Class 1 is a constant, so class 0 is top-1 on the full image.
    """

    def __init__(self, region: tuple[int, int, int, int], scale: float = 10.0) -> None:
        self.region, self.scale, self.calls = region, scale, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += x.shape[0]
        top, left, bottom, right = self.region
        kept = x[:, :, top:bottom, left:right].mean(dim=(1, 2, 3))
        return torch.stack([self.scale * kept, torch.full_like(kept, 0.5 * self.scale)], dim=1)

    def region_mask(self, height: int, width: int) -> torch.Tensor:
        m = torch.zeros(height, width, dtype=torch.bool)
        top, left, bottom, right = self.region
        m[top:bottom, left:right] = True
        return m


@pytest.fixture(scope="module")
def one_thread():
    """48 × 48 work gains nothing from threads, and loses a lot to them on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def oracle() -> OracleModel:
    return OracleModel(region=(8, 30, 24, 46))  # a 16x16 box in a 48x48 image


@pytest.fixture
def bright_image() -> torch.Tensor:
    return torch.ones(3, 48, 48)


# Source of a tiny 5-class black box, written to a temporary module by tests that run decam in a
# subprocess or by module path (``model=<module>:build``).
TINY_MODEL_SOURCE = '''
import torch
from decam.models import LoadedModel

class Tiny:
    """Fixed random linear read-out of a 4x4 average-pooled image."""
    def __init__(self):
        self.w = torch.randn(5, 48, generator=torch.Generator().manual_seed(7))
    def __call__(self, x):
        return 10 * torch.nn.functional.adaptive_avg_pool2d(x.float(), 4).flatten(1) @ self.w.T

def build():
    return LoadedModel(Tiny(), (32, 32), None, [f"c{i}" for i in range(5)], "tiny")
'''
