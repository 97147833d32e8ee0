"""The README's "Extend it" encoding is a real file that conforms and works."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

from decam.search.explainer import Explainer
from decam.registry import ENCODINGS
from decam.testing import SquareOracle, check_encoding, oracle_image, region_mask
from conftest import paper_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "my_encoding.py"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def blobs():
    """Import the example (which registers ``blobs``) and unregister it afterwards."""
    spec = importlib.util.spec_from_file_location("my_encoding", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module.Blobs
    ENCODINGS.remove("blobs")


def test_readme_shows_the_example_file_verbatim():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Extend it", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert code == EXAMPLE.read_text()
    assert len(code.splitlines()) <= 30


def test_example_passes_the_conformance_kit(blobs):
    check_encoding(blobs)


def test_example_is_usable_by_name_and_localizes_the_oracles_evidence(blobs):
    image, region = oracle_image(), region_mask()
    cfg = paper_config("encoding=blobs", "encoding.K=4", "budget=1024", "alpha=6")
    exp = Explainer(SquareOracle(image), cfg).explain(image, target=0)
    sal = torch.as_tensor(exp.saliency)
    assert float(sal[region].sum() / sal.sum()) > 3 * float(region.float().mean())
