"""compile=true: the search runs a torch.compile'd model and finds the same evidence; a compile
failure falls back to the plain model with a warning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from decam.models import compiling
from decam.search.explainer import Explainer
from decam.models import LoadedModel
from conftest import paper_config


class RegionNet(nn.Module):
    """Class 0's logit is 10 × the mean of a hidden 16x16 box (through a conv and a BatchNorm)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        nn.init.constant_(self.conv.weight, 1 / 3)
        self.bn = nn.BatchNorm2d(1).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = self.bn(self.conv(x))[:, 0, 8:24, 30:46].mean(dim=(1, 2))
        return torch.stack([10 * kept, torch.full_like(kept, 5.0)], dim=1)


def explainer(*overrides: str) -> Explainer:
    net = RegionNet().eval()
    model = LoadedModel(net, (48, 48), None, ["evidence", "constant"], "region", net)
    return Explainer(model, paper_config("generations=20", "precision=fp32", *overrides))


def explain(*overrides: str):
    return explainer(*overrides).explain(torch.ones(3, 48, 48))


def box_share(saliency) -> float:
    sal = torch.as_tensor(saliency)
    return float(sal[8:24, 30:46].sum() / sal.sum())


def test_compiled_search_finds_the_evidence_box():
    ex = explainer("compile=true")
    exp = ex.explain(torch.ones(3, 48, 48))
    assert box_share(exp.saliency) > 0.25  # the box is 11 % of the image
    forward = ex.forward.fn
    assert isinstance(forward, compiling.CompiledForward)
    assert forward.checked and forward.forward is not forward.eager  # compiled, not fallen back


def test_compile_failure_falls_back_with_a_warning(monkeypatch):
    def broken(module):
        def fail(x):
            raise RuntimeError("no C++ compiler")
        return fail

    monkeypatch.setattr(compiling.torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        exp = explain("compile=true")
    assert box_share(exp.saliency) > 0.25
