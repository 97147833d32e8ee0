"""Shared test fixtures: tiny black-box models whose evidence region is known."""

from __future__ import annotations

import pytest
import torch

from decam.config import config_dir, load_config
from decam.testing import BoxOracle

PAPER_CONFIG = config_dir() / "paper.yaml"
"""The paper's algorithm (black fill, ellipses up to H/4, the 2/3-of-mean rule): what the oracle
tests exercise, whatever decam's default configuration is."""


def paper_config(*overrides: str):
    """The paper's settings at the default population size, plus ``overrides``."""
    return load_config(PAPER_CONFIG, ["searcher.popsize=32", *overrides])


@pytest.fixture(scope="module")
def one_thread():
    """48 × 48 work gains nothing from threads, and loses a lot to them on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def oracle() -> BoxOracle:
    return BoxOracle((8, 30, 24, 46))  # a 16x16 box in a 48x48 image


@pytest.fixture
def bright_image() -> torch.Tensor:
    return torch.ones(3, 48, 48)
