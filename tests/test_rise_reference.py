"""decam's default insertion / deletion reproduces the RISE authors' ``CausalMetric``.

``RiseCausalMetric`` below is an independent port of ``evaluation.py`` in the RISE authors' repository
(``gkern``, ``auc``, ``CausalMetric.single_run`` with modes 'del' and 'ins'): it works, as theirs, on the
*normalized* image with a model that takes normalized input and ends in a softmax, one forward pass per
step, pixels moved by in-place assignment on the flattened tensor. The original fixes ``HW = 224 * 224``;
the port takes ``HW = H * W`` so that a non-square image runs the same code. decam takes the pixel-space
image and a model that normalizes inside; both must give the same AUCs.

Maps have distinct values: the reference orders pixels with numpy's unstable ``argsort`` (flipped), decam
with a stable one, so tied pixels may be visited in another order (a difference of a few pixels per tie).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from scipy.ndimage import gaussian_filter
from torch import nn

from decam.evaluation.metrics import insertion_deletion, step_size
from decam.models import ModelRunner, Normalized

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def gkern(klen: int, nsig: float) -> torch.Tensor:
    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    k = gaussian_filter(inp, nsig)
    kern = np.zeros((3, 3, klen, klen))
    kern[0, 0] = k
    kern[1, 1] = k
    kern[2, 2] = k
    return torch.from_numpy(kern.astype("float32"))


def rise_auc(arr: np.ndarray) -> float:
    return (arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1)


KERN = gkern(11, 5)


def rise_blur(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.conv2d(x, KERN, padding=11 // 2)


class RiseCausalMetric:
    def __init__(self, model, mode: str, step: int, substrate_fn) -> None:
        assert mode in ("del", "ins")
        self.model, self.mode, self.step, self.substrate_fn = model, mode, step, substrate_fn

    def single_run(self, img_tensor: torch.Tensor, explanation: np.ndarray) -> np.ndarray:
        hw = img_tensor.shape[-2] * img_tensor.shape[-1]
        pred = self.model(img_tensor)
        _, c = torch.max(pred, 1)
        c = c.numpy()[0]
        n_steps = (hw + self.step - 1) // self.step
        if self.mode == "del":
            start, finish = img_tensor.clone(), self.substrate_fn(img_tensor)
        else:
            start, finish = self.substrate_fn(img_tensor), img_tensor.clone()
        scores = np.empty(n_steps + 1)
        salient_order = np.flip(np.argsort(explanation.reshape(-1, hw), axis=1), axis=-1)
        for i in range(n_steps + 1):
            pred = self.model(start)
            scores[i] = pred[0, c]
            if i < n_steps:
                coords = salient_order[:, self.step * i:self.step * (i + 1)]
                start.numpy().reshape(1, 3, hw)[0, :, coords] = finish.numpy().reshape(1, 3, hw)[0, :, coords]
        return scores


def small_cnn() -> nn.Module:
    """Random weights; zero-mean first filters (they see texture, not the colour everyone shares) and
    class-centred, scaled logits, so the target's probability moves a lot along the curves."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, 10))
    with torch.no_grad():
        net[0].weight.sub_(net[0].weight.mean(dim=(1, 2, 3), keepdim=True))
        net[0].bias.zero_()
        net[-1].weight.sub_(net[-1].weight.mean(0, keepdim=True)).mul_(100.0)
        net[-1].bias.zero_()
    return net.eval()


def photo_like(h: int, w: int) -> torch.Tensor:
    """Pixel-space image in [0, 1]: smooth colour fields and a textured square (the "object")."""
    g = torch.Generator().manual_seed(1)
    coarse = torch.rand(1, 3, 6, 8, generator=g)
    x = 0.2 + 0.6 * nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
    cy, cx, r = int(0.4 * h), int(0.6 * w), h // 7
    x[:, cy - r:cy + r, cx - r:cx + r] = torch.rand(3, 2 * r, 2 * r, generator=g)
    return x


def random_map(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).permutation(h * w).reshape(h, w).astype(np.float32)


def blob_map(h: int, w: int) -> np.ndarray:
    """A bright blob off-centre, made tie-free by ranking (distance, then position)."""
    yy, xx = np.mgrid[:h, :w]
    d = (yy - 0.4 * h) ** 2 + (xx - 0.6 * w) ** 2
    order = np.lexsort((np.arange(h * w), d.ravel()))  # nearest first
    sal = np.empty(h * w, dtype=np.float32)
    sal[order] = np.arange(h * w, 0, -1)
    return sal.reshape(h, w)


def reference_aucs(net: nn.Module, x: torch.Tensor, sal: np.ndarray) -> tuple[float, float]:
    model = nn.Sequential(net, nn.Softmax(dim=1)).eval()
    z = TF.normalize(x, MEAN, STD).unsqueeze(0)
    step = step_size(*x.shape[-2:])
    with torch.no_grad():
        ins = RiseCausalMetric(model, "ins", step, rise_blur).single_run(z.clone(), sal)
        dele = RiseCausalMetric(model, "del", step, torch.zeros_like).single_run(z.clone(), sal)
    return rise_auc(ins), rise_auc(dele)


def decam_scores(net: nn.Module, x: torch.Tensor, sal: np.ndarray, **kwargs):
    runner = ModelRunner(Normalized(net, MEAN, STD).eval(), 64)
    with torch.no_grad():
        target = int(runner(x.unsqueeze(0)).argmax())
    return insertion_deletion(runner, x, sal, target, normalization=(MEAN, STD), **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(224, 224), (192, 256)])
@pytest.mark.parametrize("make_map", [random_map, blob_map])
def test_default_insertion_deletion_equals_the_rise_reference(size, make_map, one_thread):
    net, x, sal = small_cnn(), photo_like(*size), make_map(*size)
    ins, dele = reference_aucs(net, x, sal)
    ours = decam_scores(net, x, sal)
    assert ours.insertion_substrate == "blur" and ours.deletion_substrate == "zero"
    assert abs(ours.insertion - ins) < 1e-4, (ours.insertion, ins)
    assert abs(ours.deletion - dele) < 1e-4, (ours.deletion, dele)
    assert np.ptp(ours.deletion_curve) > 0.3  # a curve that moves: the comparison means something


@pytest.mark.slow
def test_the_reference_comparison_can_fail(one_thread):
    """Pixel black for deletion, or torchvision's normalized Gaussian for insertion, miss the reference by
    far more than the tolerance on the same model, image and map."""
    net, x, sal = small_cnn(), photo_like(224, 224), blob_map(224, 224)
    ins, dele = reference_aucs(net, x, sal)
    black = decam_scores(net, x, sal, deletion="black")
    assert abs(black.deletion - dele) > 1e-2
    runner = ModelRunner(Normalized(net, MEAN, STD).eval(), 64)
    target = int(runner(x.unsqueeze(0)).argmax())
    tv_blur = TF.gaussian_blur(x.unsqueeze(0), [11, 11], [5.0, 5.0])[0]
    from decam.evaluation.metrics.curves import _curve, auc, salient_order

    order = salient_order(torch.from_numpy(sal))
    tv = auc(_curve(runner, tv_blur, x, order, step_size(224, 224), target, 64))
    assert abs(tv - ins) > 1e-3
