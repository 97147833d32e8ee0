"""Insertion / deletion (RISE protocol) with named substrates: sanity on models whose evidence is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from decam.evaluation.metrics import DEFAULT_NORMALIZATION, N_STEPS, auc, insertion_deletion, step_size
from decam.models import Normalized
from decam.substrates import normalize, normalized_zero, reference_blur, reference_kernel, substrate

SIZE = 48
REGION = (slice(8, 24), slice(26, 42))  # 16x16 evidence box


def evidence_model(x: torch.Tensor) -> torch.Tensor:
    """Class 0's logit grows with the brightness of the evidence box; class 1 is a constant."""
    kept = x[:, :, REGION[0], REGION[1]].mean(dim=(1, 2, 3))
    return torch.stack([20 * (kept - 0.9), torch.zeros_like(kept)], dim=1)


@pytest.fixture
def image() -> torch.Tensor:
    x = torch.full((3, SIZE, SIZE), 0.3)
    x[:, REGION[0], REGION[1]] = 1.0
    return x


def region_map() -> np.ndarray:
    m = np.zeros((SIZE, SIZE), dtype=np.float32)
    m[REGION] = 1.0
    return m


def test_true_region_scores_high_and_its_inverse_negative(image):
    good = insertion_deletion(evidence_model, image, region_map(), target=0)
    bad = insertion_deletion(evidence_model, image, 1 - region_map(), target=0)
    assert good.diff > 0.5
    assert good.insertion > 0.8 and good.deletion < 0.2
    assert bad.diff < 0


def test_auc_of_constant_and_linear_curves():
    assert auc(np.full(17, 0.3)) == pytest.approx(0.3)
    assert auc(np.linspace(0, 1, 225)) == pytest.approx(0.5)
    assert auc(np.array([1.0, 0.0])) == pytest.approx(0.5)


@pytest.mark.parametrize("height,width", [(224, 224), (48, 48), (30, 70)])
def test_step_count_scales_with_image_area(height, width):
    step = step_size(height, width)
    assert step == math.ceil(height * width / N_STEPS)
    if (height, width) == (224, 224):
        assert step == 224
    seen = []
    x = torch.rand(3, height, width)
    scores = insertion_deletion(lambda b: seen.append(b.shape[0]) or torch.zeros(b.shape[0], 3), x,
                                np.random.default_rng(0).random((height, width)), target=1, batch_size=50)
    n_points = math.ceil(height * width / step) + 1
    assert len(scores.insertion_curve) == len(scores.deletion_curve) == n_points
    assert sum(seen) == 2 * n_points and max(seen) <= 50
    assert scores.insertion == pytest.approx(1 / 3) and scores.deletion == pytest.approx(1 / 3)


def test_default_substrates_are_the_rise_reference(image):
    """Deletion ends at the mean colour of the (here unknown, so ImageNet) normalization, insertion starts
    from the reference blur; ``deletion="black"`` keeps the old pixel-black deletion available."""
    def prob(x: torch.Tensor) -> float:
        return float(evidence_model(x.unsqueeze(0)).softmax(-1)[0, 0])

    s = insertion_deletion(evidence_model, image, region_map(), target=0)
    assert (s.insertion_substrate, s.deletion_substrate) == ("blur", "zero")
    mean_colour = torch.tensor(DEFAULT_NORMALIZATION[0]).view(3, 1, 1).expand_as(image)
    assert s.deletion_curve[0] == pytest.approx(prob(image), abs=1e-6)
    assert s.deletion_curve[-1] == pytest.approx(prob(mean_colour), abs=1e-6)
    assert s.insertion_curve[0] == pytest.approx(prob(reference_blur(image, DEFAULT_NORMALIZATION)), abs=1e-6)
    assert s.insertion_curve[-1] == pytest.approx(prob(image), abs=1e-6)
    black = insertion_deletion(evidence_model, image, region_map(), target=0, deletion="black")
    assert black.deletion_substrate == "black"
    assert black.deletion_curve[-1] == pytest.approx(prob(torch.zeros_like(image)), abs=1e-6)
    with pytest.raises(ValueError, match="unknown substrate"):
        insertion_deletion(evidence_model, image, region_map(), target=0, insertion="grey")


def test_substrates_in_pixel_space():
    norm = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    x = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(0))
    zero = normalized_zero(x, norm)
    assert torch.allclose(normalize(zero, norm), torch.zeros_like(x))  # 0 in the normalized input
    assert torch.equal(substrate(x, "black", norm), torch.zeros_like(x))
    assert torch.allclose(substrate(x, "mean", norm), x.mean(dim=(1, 2), keepdim=True).expand_as(x))
    k = reference_kernel()
    assert k.shape == (11, 11) and float(k.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(k[5, 5] / k[0, 0]) < 1.2  # sigma 5 on 11 pixels, reflected: nearly flat
    # the blur of the normalized image, back in pixel space: inside, a plain weighted mean of the pixels;
    # at the border the zero padding of the normalized tensor pulls towards the mean colour
    blurred = substrate(x, "blur", norm)
    inner = (x[:, 10 - 5:10 + 6, 15 - 5:15 + 6] * k).sum(dim=(1, 2))
    assert torch.allclose(blurred[:, 10, 15], inner, atol=1e-5)
    corner = (x[:, :6, :6] * k[5:, 5:]).sum(dim=(1, 2)) + zero[:, 0, 0] * (1 - k[5:, 5:].sum())
    assert torch.allclose(blurred[:, 0, 0], corner, atol=1e-5)


MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
CHECK = ((torch.arange(SIZE)[:, None] + torch.arange(SIZE)[None, :]) % 2 * 2 - 1).float()


class TextureAndBrightness(torch.nn.Module):
    """On the normalized input: class 0's evidence is a checkerboard texture, and brightness counts too, so
    black pixels are evidence (against class 0), not an absence of it."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        texture, bright = (z * CHECK).mean(dim=(1, 2, 3)), z.mean(dim=(1, 2, 3))
        return torch.stack([8 * texture + 8 * bright, torch.zeros_like(texture)], dim=1)


def test_a_random_map_scores_near_zero_with_the_reference_and_high_with_pixel_black():
    """The issue's bug: a random map scored 37 DiffAUC with pixel-black deletion. Here every pixel carries
    the same evidence, so no map can beat another. With the reference substrates (mean colour, 0 in the
    normalized input; blur, which erases the texture) insertion and deletion of random pixels mirror each
    other and DiffAUC is ≈ 0. Black pixels are far from the mean colour: each one deleted also *adds*
    counter-evidence, the deletion curve collapses and the random map earns a large DiffAUC."""
    model = Normalized(TextureAndBrightness(), MEAN, STD)
    x = torch.tensor(MEAN).view(3, 1, 1) + torch.tensor(STD).view(3, 1, 1) * CHECK  # in [0.25, 0.75]
    for seed in range(2):
        sal = np.random.default_rng(seed).random((SIZE, SIZE)).astype(np.float32)
        ref = insertion_deletion(model, x, sal, 0, normalization=(MEAN, STD))
        black = insertion_deletion(model, x, sal, 0, normalization=(MEAN, STD), deletion="black")
        assert abs(ref.diff) < 0.02
        assert black.diff > 0.4 and black.deletion < ref.deletion - 0.4


def test_any_number_of_classes_and_target(image):
    model = lambda b: torch.cat([evidence_model(b), torch.zeros(b.shape[0], 998)], dim=1)  # noqa: E731
    s = insertion_deletion(model, image, region_map(), target=0)
    assert 0 <= s.deletion <= s.insertion <= 1


@pytest.mark.parametrize("bad,match", [(np.zeros((10, 10)), "does not match"),
                                       (np.full((SIZE, SIZE), np.nan), "NaN")])
def test_bad_maps_are_rejected(image, bad, match):
    with pytest.raises(ValueError, match=match):
        insertion_deletion(evidence_model, image, bad, target=0)
