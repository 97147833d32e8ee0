"""The ``model_options`` config section: checked against the adapter's signature like a plugin section,
passed to it by every path that loads a model (explain, evaluate, Ray actors), and refused by models
that take none."""

from __future__ import annotations

from typing import Annotated

import pytest
import torch

import decam
from decam.cli import main
from decam.config import load_config
from decam.errors import ConfigError
from decam.models import ForwardSpec, LoadedModel, load_model
from decam.registry import Range


def sized(side: Annotated[int, Range(8, 100)] = 48, classes: int = 3) -> LoadedModel:
    """Loadable as ``test_model_options:sized`` (pytest puts tests/ on sys.path): a mean-colour read-out."""
    weight = torch.arange(3 * classes, dtype=torch.float32).view(classes, 3)
    return LoadedModel(lambda x: x.mean(dim=(2, 3)) @ weight.T, (side, side), None, None, "sized")


def test_a_function_model_gets_its_options_checked_against_its_signature():
    model = load_model("test_model_options:sized", options={"side": 32, "classes": 5})
    assert model.input_size == (32, 32) and model.forward(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    assert model.source == ("test_model_options:sized", None, {"side": 32, "classes": 5})
    with pytest.raises(ConfigError, match=r"model_options.side=4 is out of range: expected \[8, 100\]"):
        load_model("test_model_options:sized", options={"side": 4})
    with pytest.raises(ConfigError, match=r"unknown key model_options.colour for model 'test_model_options:sized'; "
                                          r"valid keys: side, classes"):
        load_model("test_model_options:sized", options={"colour": 1})


def test_models_without_options_refuse_them(capsys):
    with pytest.raises(ConfigError, match="unknown key model_options.timeout for model 'efficientnet_lite0'; "
                                          "valid keys: none"):
        load_model("efficientnet_lite0", options={"timeout": 3})
    assert main(["explain", "--model", "torchvision:resnet18", "model_options.x=1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["decam: error: unknown key model_options.x for model 'torchvision:resnet18'; valid keys: none"]


def test_the_section_must_be_a_mapping():
    with pytest.raises(ConfigError, match="model_options"):
        load_config(None, ["model_options=3"])
    assert dict(load_config().model_options) == {}


def test_a_ray_actor_rebuilds_the_model_with_its_options():
    model = load_model("test_model_options:sized", options={"side": 24})
    rebuilt = ForwardSpec(model.source).build()
    x = torch.rand(2, 3, 24, 24)
    assert torch.equal(rebuilt(x), model.forward(x))


def test_explain_passes_the_configs_options_to_the_model():
    exp = decam.explain("test_model_options:sized", torch.rand(3, 32, 32), target=1, generations=2, popsize=4,
                        model_options={"side": 32, "classes": 4})
    assert exp.saliency.shape == (32, 32) and exp.config["model_options"] == {"side": 32, "classes": 4}
    assert exp.remote == {}
