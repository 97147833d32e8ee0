"""The metric suite beyond insertion / deletion: MuFidelity, ROAD, sanity checks, stability, and which
metrics a run computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from decam.errors import ConfigError
from decam.evaluation.building import MethodBuilder
from decam.evaluation.metrics import (mu_fidelity, other_class, randomize, randomized_model, road, spearman, stability,
                                      stage_names, units)
from decam.evaluation.metrics.road import relevance_ranks
from decam.evaluation.metrics.sanity import cascading_randomization, random_class_test
from decam.evaluation.metrics.suite import METRICS, MetricSettings, parse_metrics
from decam.models import LoadedModel, Normalized
from decam.substrates import normalize

SIZE = 32
MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
NORM = (MEAN, STD)


class Additive(nn.Module):
    """On the normalized input: class 0's logit is Σ W·z, a sum of per-pixel contributions; class 1 is 0."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w", torch.randn(3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) / 20)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        logit = (z * self.w).sum(dim=(1, 2, 3))
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def image(seed: int = 0) -> torch.Tensor:
    return torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 5)).eval()


def cnn_model() -> LoadedModel:
    net = Normalized(tiny_cnn(), MEAN, STD).eval()
    return LoadedModel(net, (SIZE, SIZE), None, [f"c{i}" for i in range(5)], "cnn", net, normalization=NORM)


# --- MuFidelity -------------------------------------------------------------------------------------------

def test_mufidelity_of_a_perfect_attribution_for_an_additive_model_is_one():
    """Removing a cell (setting it to the baseline, 0 in the normalized input) lowers the logit by exactly
    the sum of W·z over it: the attribution W·z (summed over channels) correlates perfectly."""
    model, x = Normalized(Additive(), MEAN, STD), image()
    perfect = (model.net.w * normalize(x, NORM)).sum(0).numpy()
    assert mu_fidelity(model, x, perfect, 0, normalization=NORM) == pytest.approx(1.0, abs=1e-4)
    assert mu_fidelity(model, x, -perfect, 0, normalization=NORM) == pytest.approx(-1.0, abs=1e-4)
    rs = [mu_fidelity(model, x, np.random.default_rng(s).random((SIZE, SIZE)), 0, normalization=NORM, seed=s)
          for s in range(4)]
    assert abs(np.mean(rs)) < 0.15 and max(abs(r) for r in rs) < 0.35  # 200 samples: s.e. ≈ 0.07
    assert mu_fidelity(model, x, np.zeros((SIZE, SIZE)), 0, normalization=NORM) == 0.0  # nothing to correlate
    # the wrong baseline (pixel black) breaks the additive bookkeeping of a perfect map
    assert mu_fidelity(model, x, perfect, 0, normalization=NORM, baseline="black") < 0.99


def test_mufidelity_uses_the_given_number_of_queries_and_is_seeded():
    calls = []
    model = Normalized(Additive(), MEAN, STD)

    def forward(b):
        calls.append(b.shape[0])
        return model(b)

    x, sal = image(), np.random.default_rng(0).random((SIZE, SIZE))
    a = mu_fidelity(forward, x, sal, 0, normalization=NORM, n_samples=50, batch_size=16)
    assert sum(calls) == 51 and max(calls) <= 16
    assert a == mu_fidelity(forward, x, sal, 0, normalization=NORM, n_samples=50, batch_size=16)


# --- ROAD -------------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")  # inside pytorch-grad-cam
def test_road_reproduces_pytorch_grad_cams_averages():
    """Same imputer, same removal orders, same noise (seeded identically), same score: decam's batched ROAD
    equals pytorch-grad-cam's ROADMostRelevantFirstAverage / ROADLeastRelevantFirstAverage run on the
    normalized image with the map's ranks."""
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirstAverage, ROADMostRelevantFirstAverage
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    net, x = tiny_cnn(), image()
    sal = np.random.default_rng(0).random((SIZE, SIZE)).astype(np.float32)
    target = int(net(normalize(x, NORM)[None]).argmax())
    percentiles = [20, 50, 80]
    ours = road(Normalized(net, MEAN, STD), x, sal, target, normalization=NORM, percentiles=tuple(percentiles), seed=7)
    cams = relevance_ranks(torch.from_numpy(sal)).numpy()[None]
    targets = [ClassifierOutputSoftmaxTarget(target)]
    z = normalize(x, NORM)[None]
    torch.manual_seed(7)
    morf = ROADMostRelevantFirstAverage(percentiles)(z, cams, targets, net)
    lerf = ROADLeastRelevantFirstAverage(percentiles)(z, cams, targets, net)
    assert ours.morf_mean == pytest.approx(float(morf[0]), abs=1e-5)
    assert ours.lerf_mean == pytest.approx(float(lerf[0]), abs=1e-5)
    assert ours.combined == pytest.approx((float(lerf[0]) - float(morf[0])) / 2, abs=1e-5)


def test_road_ranks_a_true_map_above_its_inverse():
    model, x = Normalized(Additive(), MEAN, STD), image()
    good = (model.net.w * normalize(x, NORM)).sum(0).numpy()
    a, b = road(model, x, good, 0, normalization=NORM), road(model, x, -good, 0, normalization=NORM)
    assert a.morf_mean < b.morf_mean and a.lerf_mean > b.lerf_mean and a.combined > b.combined
    assert len(a.morf) == len(a.lerf) == 9
    with pytest.raises(ValueError, match="percentiles"):
        road(model, x, good, 0, percentiles=(0, 50))


# --- sanity checks -------------------------------------------------------------------------------------------

def test_units_and_stages_of_a_sequential_net():
    net = Normalized(tiny_cnn(), MEAN, STD)
    assert [name for name, _ in units(net)] == ["net.0", "net.3", "net.5", "net.9"]  # BatchNorm joins its conv
    assert stage_names(net, 3) == ["head", "top1", "top2", "top3"]
    assert stage_names(net, 10) == ["head", "top1", "top2", "top3"]  # as far as the network goes


def test_randomize_reinitializes_the_top_and_leaves_the_original_alone():
    net = Normalized(tiny_cnn(), MEAN, STD)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    head = randomize(net, 0)
    top1 = randomize(net, 1)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())

    def changed(m: nn.Module) -> set[str]:
        return {k.split(".")[1] for k, v in m.state_dict().items() if not torch.equal(before[k], v)}

    assert changed(head) == {"9"} and changed(top1) == {"5", "9"}
    assert torch.equal(randomize(net, 1, seed=3).net[5].weight, randomize(net, 1, seed=3).net[5].weight)
    assert torch.equal(head.net[9].weight, randomize(net, 2).net[9].weight)  # the stages cascade
    assert not torch.equal(head.net[9].weight, randomize(net, 0, seed=1).net[9].weight)


def test_efficientnet_lite_units_follow_its_blocks():
    from decam.models import load_model

    model = load_model("efficientnet_lite0", "random")
    names = [n for n, _ in units(model.module)]
    assert names[:2] == ["net._conv_stem", "net._blocks.0"] and names[-3:] == ["net._blocks.15", "net._conv_head",
                                                                                  "net._fc"]
    top2 = randomize(model.module, 2)
    net, new = model.module.net, top2.net
    assert not torch.equal(net._fc.weight, new._fc.weight)
    assert not torch.equal(net._conv_head.weight, new._conv_head.weight)
    assert not torch.equal(net._blocks[15]._project_conv.weight, new._blocks[15]._project_conv.weight)
    assert torch.equal(net._blocks[14]._project_conv.weight, new._blocks[14]._project_conv.weight)


def test_a_model_independent_map_passes_randomization_unchanged_and_a_gradient_map_does_not():
    model, x = cnn_model(), image()
    builder = MethodBuilder(model)
    target = int(model.forward(x[None]).argmax())
    for name, expect_same in (("gaussian", True), ("gradcam", False)):
        factory = builder.factory(name)
        reference = factory(None, None)(x, target)
        cascade = cascading_randomization(lambda m: factory(m, None), model, x, target, reference, blocks=2)
        assert list(cascade) == ["head", "top1", "top2"]
        _, rho_class = random_class_test(factory(None, None), x, target, reference, 5)
        if expect_same:
            assert all(v == pytest.approx(1.0) for v in cascade.values()) and rho_class == pytest.approx(1.0)
        else:
            assert min(cascade.values()) < 0.8 and rho_class < 0.95


def test_randomization_needs_a_network_and_other_class_differs():
    box = LoadedModel(lambda x: torch.zeros(x.shape[0], 3), (SIZE, SIZE), None, None, "box")
    with pytest.raises(ConfigError, match="black-box"):
        randomized_model(box, 0)
    drawn = {other_class(2, 5, seed) for seed in range(40)}
    assert drawn == {0, 1, 3, 4}
    assert spearman(np.ones(4), np.ones(4)) == 1.0 and spearman(np.ones(4), np.arange(4)) == 0.0


# --- stability -------------------------------------------------------------------------------------------

def test_stability_separates_a_seeded_random_map_from_a_deterministic_one():
    model, x = cnn_model(), image()
    builder = MethodBuilder(model)
    diff = lambda m: float(m.mean())  # noqa: E731  (any score of a map)
    rand = stability(lambda s: builder.build("random", seed=s), x, 0, diff)
    fixed = stability(lambda s: builder.build("gaussian", seed=s), x, 0, diff)
    assert abs(rand.spearman) < 0.1 and rand.diff_std > 0 and rand.seeds == (0, 1, 2, 3, 4)
    assert fixed.spearman == pytest.approx(1.0) and fixed.diff_std == 0.0


# --- selection -------------------------------------------------------------------------------------------

def test_parse_metrics():
    assert parse_metrics("default") == ("curves", "swapped", "mufidelity", "road")
    assert parse_metrics("all") == METRICS
    assert parse_metrics("road") == ("curves", "road")  # insertion / deletion always
    assert parse_metrics("sanity,curves") == ("curves", "sanity")
    with pytest.raises(ConfigError, match="did you mean 'road'"):
        parse_metrics("raod")
    with pytest.raises(ConfigError, match="unknown substrate"):
        MetricSettings(deletion="grey")
    s = MetricSettings("all", "black", "blur")
    assert MetricSettings.from_dict(s.to_dict()) == s and s.reruns
