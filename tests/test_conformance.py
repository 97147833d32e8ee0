"""Every registered encoding × searcher (built-in or installed) explains a black box with known evidence.

The oracle's class-0 logit is the kept fraction of a hidden 16 × 16 square in a 48 × 48 image
(11 % of the pixels), so a working pair must put most of the saliency there, within the same
budget of model queries for every searcher.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import decam
from decam.config import load_config
from decam.search.explainer import Explainer
from decam.registry import ENCODINGS, SEARCHERS
from decam.testing import SquareOracle, check_encoding, check_searcher, oracle_image, region_mask
from conftest import paper_config

BUDGET = 2048  # model queries per explanation, the same for every searcher
ALPHA = 6.0  # area penalty: makes masks that keep pixels outside the evidence clearly worse
PAIRS = list(itertools.product(decam.list_encodings(), decam.list_searchers()))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", decam.list_encodings())
def test_encoding_passes_the_conformance_kit(name):
    check_encoding(ENCODINGS[name])


@pytest.mark.parametrize("name", decam.list_searchers())
def test_searcher_passes_the_conformance_kit(name):
    check_searcher(SEARCHERS[name])


@pytest.mark.parametrize("encoding, searcher", PAIRS)
def test_every_pair_localizes_the_oracles_evidence_within_the_budget(encoding, searcher):
    image, region = oracle_image(), region_mask()
    cfg = paper_config(f"encoding={encoding}", f"searcher={searcher}", f"budget={BUDGET}", f"alpha={ALPHA}")
    exp = Explainer(SquareOracle(image), cfg).explain(image, target=0)

    sal = torch.as_tensor(exp.saliency)
    area = float(region.float().mean())
    inside = float(sal[region].sum() / sal.sum())
    assert inside > 3.5 * area, f"{encoding}×{searcher}: {inside:.0%} of the saliency in {area:.0%} of the image"
    assert float(sal[region].mean()) > 0.8, f"{encoding}×{searcher}: the evidence square is only partly salient"

    searched = exp.queries - 1  # minus the unmasked image's query
    step_costs = np.diff([0] + [h["queries"] for h in exp.history])
    assert BUDGET - step_costs.max() < searched <= BUDGET, f"{searched} queries for a budget of {BUDGET}"


@pytest.mark.parametrize("name", decam.list_searchers())
def test_the_smallest_budget_config_accepts_is_never_exceeded(name):
    image = oracle_image()
    cfg = load_config(None, [f"searcher={name}"])
    if "popsize" not in cfg.searcher:
        pytest.skip(f"{name} has no popsize")
    cfg = load_config(None, [f"searcher={name}", "searcher.popsize=8", "budget=16"])
    exp = Explainer(SquareOracle(image), cfg).explain(image, target=0)
    assert 8 <= exp.queries - 1 <= 16
