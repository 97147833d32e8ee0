"""BatchNorm folding keeps the network's outputs and leaves models it cannot handle alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from decam.models.folding import fold_batchnorm


class PaddedConv(nn.Conv2d):
    """A Conv2d subclass that pads in its forward, as TF-style 'same' convolutions do."""

    def forward(self, x):
        return F.conv2d(F.pad(x, (0, 1, 0, 1)), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def net() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        PaddedConv(8, 8, 3, stride=2, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5),
    )
    for m in model.modules():  # running statistics far from the identity, so a wrong fold shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


def test_folded_network_gives_the_same_logits_without_batchnorm():
    model = net()
    folded = fold_batchnorm(model)
    x = torch.rand(4, 3, 16, 16)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 3  # the original is untouched


def test_training_and_untraceable_models_are_returned_unchanged():
    training = net().train()
    assert fold_batchnorm(training) is training

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = net()

        def forward(self, x):
            return self.body(x) if x.mean() > 0 else -self.body(x)  # data-dependent: fx cannot trace it

    branchy = Branchy().eval()
    assert fold_batchnorm(branchy) is branchy


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_torchvision_networks_fold_completely_and_keep_their_logits(arch):
    import torchvision.models as tvm

    torch.manual_seed(0)
    model = getattr(tvm, arch)(weights=None).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2)
    folded = fold_batchnorm(model)
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        expected, got = model(x), folded(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


class SamePadded(nn.Module):
    """TF-style 'same' padding as a module before an unpadded convolution (EfficientNet-Lite's layout)."""

    def __init__(self, pad: tuple[int, int, int, int], stride: int = 1) -> None:
        super().__init__()
        self.static_padding = nn.ZeroPad2d(pad)
        self.conv = nn.Conv2d(4, 4, 3, stride=stride, groups=4)

    def forward(self, x):
        return F.conv2d(self.static_padding(x), self.conv.weight, self.conv.bias, self.conv.stride, 0, 1, 4)


def test_symmetric_zero_padding_is_folded_into_the_convolution_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(SamePadded((1, 1, 1, 1)), nn.ReLU(), SamePadded((0, 1, 0, 1), stride=2),
                          nn.ZeroPad2d(2), nn.Conv2d(4, 4, 5)).eval()
    folded = fold_batchnorm(model)
    x = torch.rand(2, 4, 12, 12)
    assert torch.equal(folded(x), model(x))
    pads = [m.padding for m in folded.modules() if isinstance(m, nn.ZeroPad2d)]
    assert pads == [(0, 1, 0, 1)]  # the asymmetric one stays: a conv pads both sides alike


def test_lite0_folded_gives_the_same_logits():
    from decam.models import load_model

    module = load_model("efficientnet_lite0").module
    folded = fold_batchnorm(module)
    assert not any(isinstance(m, (nn.BatchNorm2d,)) for m in folded.modules())
    assert sum(isinstance(m, nn.ZeroPad2d) for m in folded.modules()) < sum(
        isinstance(m, nn.ZeroPad2d) for m in module.modules())
    x = torch.rand(2, 3, 224, 224)
    torch.testing.assert_close(folded(x), module(x), rtol=1e-4, atol=1e-4)
