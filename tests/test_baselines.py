"""Every registered explanation method returns a finite (H, W) map on tiny CNNs, picks a sensible target
layer, leaves the caller's network as it was and fails with a clear message."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from decam.evaluation.methods import METHODS, Rise, create_method
from decam.config import load_config
from decam.errors import ConfigError
from decam.evaluation.methods.layers import find_cam_model
from decam.models import LoadedModel, Normalized

SIZE = 32
FAST = {"ig": {"n_steps": 4}, "lime": {"n_samples": 32, "n_segments": 8}, "rise": {"n_masks": 32},
        "ablationcam": {"batch_size": 8}, "sobol": {"designs": 4}, "hsic": {"designs": 64},
        "kernelshap": {"n_samples": 32, "n_segments": 8}, "occlusion": {"window": 8, "stride": 4},
        "shap": {"max_evals": 64, "blur": 8}}
SLOW = {"shap"}  # numba compiles shap's partition tree on first use (seconds)


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )


@pytest.fixture
def model() -> LoadedModel:
    module = Normalized(tiny_cnn()).eval()
    return LoadedModel(module, (SIZE, SIZE), None, None, "tiny_cnn", module)


@pytest.fixture
def image() -> torch.Tensor:
    """Four coloured quadrants with a little noise: enough structure for SLIC superpixels."""
    x = 0.1 * torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    half = SIZE // 2
    x[0, :half, :half] += 0.8
    x[1, :half, half:] += 0.8
    x[2, half:, :half] += 0.8
    return x


def test_the_registry_holds_every_method():
    assert {"decam", "gradcam", "gradcampp", "fullgrad", "ablationcam", "ig", "lime", "rise",
            "random", "gaussian"} <= set(METHODS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(METHODS)])
def test_every_method_returns_a_finite_map_and_leaves_the_model_alone(name, model, image):
    module = model.module
    head = module.net[7]
    head.train()  # a caller's module mode (side-effect free here) must survive grad-cam's model.eval()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    params = {"config": load_config(None, ["generations=2", "searcher.popsize=8", "encoding.K=3"])} \
        if name == "decam" else FAST.get(name, {})
    method = create_method(name, model, **params)
    sal = method(image, 3)
    assert sal.shape == (SIZE, SIZE) and sal.dtype == np.float32 and np.isfinite(sal).all()
    assert sal.max() > sal.min() or name == "ablationcam"  # every ablation may raise the score of a random net
    assert method.queries >= (0 if name in ("random", "gaussian") else 1)
    assert head.training and not module.net[1].training
    assert all(p.grad is None and p.requires_grad for p in module.parameters())
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert len(list(module.modules())) == len(list(Normalized(tiny_cnn()).modules()))  # nothing swapped in


def test_gradient_methods_need_a_module():
    black_box = LoadedModel(lambda x: x.mean(dim=(2, 3)), (SIZE, SIZE), None, None, "callable", None)
    for name in ("gradcam", "fullgrad", "ig"):
        with pytest.raises(ConfigError, match="needs the network as an nn.Module"):
            create_method(name, black_box)
    assert create_method("rise", black_box, n_masks=8)(torch.rand(3, SIZE, SIZE), 0).shape == (SIZE, SIZE)


def test_automatic_target_layer_is_the_last_spatial_conv_block(model):
    cam = find_cam_model(model.module, (SIZE, SIZE))
    assert cam.layer is model.module.net[3] and cam.module is model.module


def test_automatic_target_layer_for_a_torchvision_resnet():
    from torchvision.models import resnet18

    module = Normalized(resnet18(weights=None)).eval()
    assert find_cam_model(module, (64, 64)).layer_name == "net.layer4"


def test_efficientnet_lite_gets_its_head_as_a_module_of_its_own():
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    module = Normalized(EfficientNet.from_name("efficientnet-lite0")).eval()
    cam = find_cam_model(module, (64, 64))
    assert cam.layer is not module.net._swish and isinstance(cam.layer.act, nn.ReLU6)
    assert cam.layer.conv is module.net._conv_head and cam.layer.bn is module.net._bn1
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(cam.module(x), module(x), atol=1e-5)
    with pytest.raises(ConfigError, match="runs 2 times"):
        find_cam_model(module, (64, 64), target_layer="_swish")  # shared by stem and head


def test_target_layer_override_and_its_errors(model):
    assert find_cam_model(model.module, (SIZE, SIZE), "net.0").layer is model.module.net[0]
    assert find_cam_model(model.module, (SIZE, SIZE), "0").layer is model.module.net[0]  # net. may be left out
    with pytest.raises(ConfigError, match="not a module of the model"):
        find_cam_model(model.module, (SIZE, SIZE), "net.33")
    with pytest.raises(ConfigError, match=r"outputs shape \(1, 5\)"):
        find_cam_model(model.module, (SIZE, SIZE), "net.7")
    sal = create_method("gradcam", model, target_layer="net.0")(torch.rand(3, SIZE, SIZE), 1)
    assert sal.shape == (SIZE, SIZE)


def test_rise_masks_and_rise_finds_the_evidence():
    region = (slice(4, 14), slice(18, 28))

    def oracle(x: torch.Tensor) -> torch.Tensor:
        kept = x[:, :, region[0], region[1]].mean(dim=(1, 2, 3))
        return torch.stack([8 * kept, torch.full_like(kept, 4.0)], dim=1)

    model = LoadedModel(oracle, (SIZE, SIZE), None, None, "oracle", None)
    rise = create_method("rise", model, n_masks=400, batch_size=100)
    masks = Rise.masks(rise, 500, SIZE, SIZE, torch.Generator().manual_seed(0))
    assert masks.shape == (500, SIZE, SIZE) and 0 <= masks.min() and masks.max() <= 1
    assert masks.mean().item() == pytest.approx(0.5, abs=0.05)
    sal = rise(torch.ones(3, SIZE, SIZE), 0)
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    inside[region] = True
    assert sal[inside].mean() > sal[~inside].mean() + 0.05
    assert rise.queries == 400
    assert np.array_equal(sal, rise(torch.ones(3, SIZE, SIZE), 0))  # seeded


def test_controls(model, image):
    gauss = create_method("gaussian", model)(image, 0)
    assert np.unravel_index(gauss.argmax(), gauss.shape) in {(15, 15), (15, 16), (16, 15), (16, 16)}
    a = create_method("random", model, seed=3)(image, 0)
    b = create_method("random", model, seed=3)(image, 0)
    assert np.array_equal(a, b)


def test_unknown_method_names_suggest_close_ones(model):
    with pytest.raises(ConfigError, match="gradcam"):
        create_method("gradcamm", model)
