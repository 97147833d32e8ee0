"""``onnx:PATH`` models, on small networks exported here with ``torch.onnx.export``: the same scores
as the torch network, input size and layout from the graph, normalization from the options, a
fixed batch axis, clear errors, and maps as close to the torch model's as a change of seed is."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from decam.cli import main
from decam.errors import ConfigError, ModelUnavailableError
from decam.models import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, Normalized, load_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


class SmallNet(nn.Module):
    """Two convolutions, global pooling and a linear read-out: 10 classes, any input size."""

    def __init__(self, softmax: bool = False, nhwc: bool = False) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, 10)
        self.softmax, self.nhwc = softmax, nhwc
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        out = self.head(self.features(x).flatten(1))
        return out.softmax(-1) if self.softmax else out


def export(net: nn.Module, path: Path, example: torch.Tensor, dynamic: dict | None = None) -> str:
    """The TorchScript-based exporter (``dynamo=False``): works offline without onnxscript."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), str(path), dynamo=False, input_names=["images"], output_names=["scores"],
                          dynamic_axes=dynamic)
    return f"onnx:{path}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("onnx")
    x = torch.rand(2, 3, 48, 48)
    return {
        "dynamic": export(SmallNet(), folder / "dynamic.onnx", x, {"images": {0: "batch"}, "scores": {0: "batch"}}),
        "fixed4": export(SmallNet(), folder / "fixed4.onnx", torch.rand(4, 3, 48, 48)),
        "any_size": export(SmallNet(), folder / "any_size.onnx", x, {"images": {0: "b", 2: "h", 3: "w"}}),
        "softmax": export(SmallNet(softmax=True), folder / "softmax.onnx", x, {"images": {0: "b"}}),
        "nhwc": export(SmallNet(nhwc=True), folder / "nhwc.onnx", torch.rand(2, 48, 48, 3), {"images": {0: "b"}}),
    }


def images(n: int) -> torch.Tensor:
    return torch.rand(n, 3, 48, 48, generator=torch.Generator().manual_seed(n))


def test_scores_match_the_torch_network_and_the_graph_gives_the_input_size(exported):
    model = load_model(exported["dynamic"])
    x = images(5)
    assert torch.allclose(model.forward(x), SmallNet()(x), atol=1e-5)
    assert model.input_size == (48, 48) and model.resize == 55 and model.module is None
    assert model.class_names is None and model.normalization is None and model.source == (exported["dynamic"], None)


def test_a_fixed_batch_axis_is_filled_chunk_by_chunk(exported):
    model = load_model(exported["fixed4"])
    for n in (1, 4, 10):
        x = images(n)
        assert torch.allclose(model.forward(x), SmallNet()(x), atol=1e-5), n


def test_mean_and_std_normalize_inside_the_adapter(exported):
    options = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    model = load_model(exported["dynamic"], options=options)
    x = images(3)
    assert torch.allclose(model.forward(x), Normalized(SmallNet())(x), atol=1e-5)
    assert model.normalization == (IMAGENET_MEAN, IMAGENET_STD) and model.source[2] == options


def test_nhwc_graphs_are_recognized(exported):
    model = load_model(exported["nhwc"])
    x = images(2)
    assert torch.allclose(model.forward(x), SmallNet()(x), atol=1e-5) and model.input_size == (48, 48)


def test_a_graph_without_a_fixed_size_takes_it_from_the_options(exported):
    assert load_model(exported["any_size"]).input_size == (224, 224)
    model = load_model(exported["any_size"], options={"input_size": [48, 64], "crop": 1.0, "labels": "imagenet"})
    assert model.input_size == (48, 64) and model.resize == 48 and model.class_names[0] == "tench"
    x = torch.rand(2, 3, 48, 64)
    assert torch.allclose(model.forward(x), SmallNet()(x), atol=1e-5)


def test_probability_outputs_become_log_probabilities(exported):
    model = load_model(exported["softmax"], options={"scores": "probabilities"})
    x = images(2)
    assert torch.allclose(model.forward(x).softmax(-1), SmallNet()(x).softmax(-1), atol=1e-5)


@pytest.mark.parametrize("name, options, weights, kind, message", [
    ("onnx:/nonexistent/model.onnx", {}, None, ModelUnavailableError, "no such file"),
    ("dynamic", {"providers": ["NoSuchExecutionProvider"]}, None, ConfigError,
     r"providers=\['NoSuchExecutionProvider'\]: not available here; available: .*CPUExecutionProvider"),
    ("dynamic", {}, "random", ConfigError, "brings its own weights"),
    ("dynamic", {"input_size": [64, 64]}, None, ConfigError, r"takes \[48, 48\] only"),
    ("dynamic", {"mean": [0.5, 0.5, 0.5]}, None, ConfigError, "mean and model_options.std go together"),
    ("dynamic", {"batch": 4}, None, ConfigError, "unknown key model_options.batch for model 'onnx:"),
])
def test_mistakes_are_one_line_errors(exported, name, options, weights, kind, message):
    with pytest.raises(kind, match=message) as info:
        load_model(exported.get(name, name), weights, options)
    assert "\n" not in str(info.value)


def test_a_corrupt_file_is_an_unavailable_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelUnavailableError, match="ONNX Runtime cannot load it"):
        load_model(f"onnx:{bad}")


def test_gradient_baselines_say_they_need_a_torch_model(exported, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "red.png")
    code = main(["evaluate", str(tmp_path / "red.png"), "--model", exported["dynamic"], "--methods", "gradcam", "--quiet",
                 "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"method 'gradcam' needs the network as an nn.Module (a torch model: it takes gradients); model " \
           f"'{exported['dynamic']}' is a black box" in err[0]


def test_decam_explain_runs_an_onnx_model_from_the_command_line(exported, tmp_path, capsys):
    code = main(["explain", "--model", exported["any_size"], "model_options.input_size=[48,48]", "--generations", "2",
                 "--popsize", "4", "--quiet", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "coffee.saliency.npy").is_file()


def top_overlap(a, b, fraction: float = 0.1) -> float:
    """Share of the top ``fraction`` pixels of map ``a`` that are also in the top of map ``b``."""
    a, b = torch.as_tensor(a).flatten(), torch.as_tensor(b).flatten()
    k = max(1, int(fraction * a.numel()))
    return len(set(a.topk(k).indices.tolist()) & set(b.topk(k).indices.tolist())) / k


@pytest.mark.slow
def test_onnx_maps_agree_with_the_torch_models_at_least_as_well_as_two_seeds_do(exported):
    import decam

    net = SmallNet()
    torch_model = LoadedModel(net, (48, 48), None, None, "small", net)
    onnx = load_model(exported["dynamic"])
    run = {"generations": 12, "popsize": 16}
    same, seeds = [], []
    for i in range(3):
        image = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(100 + i))
        t0 = decam.explain(torch_model, image, target=i, seed=0, **run).saliency
        t1 = decam.explain(torch_model, image, target=i, seed=1, **run).saliency
        o0 = decam.explain(onnx, image, target=i, seed=0, **run).saliency
        same.append(top_overlap(o0, t0))
        seeds.append(top_overlap(t1, t0))
    assert sum(same) / 3 >= sum(seeds) / 3, (same, seeds)
