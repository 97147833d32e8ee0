"""Insertion / deletion (RISE protocol): sanity on models whose evidence is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from decam.evaluation.metrics import N_STEPS, auc, blur_substrate, insertion_deletion, step_size

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


def test_substrates_are_black_for_deletion_and_blur_for_insertion(image):
    def prob(x: torch.Tensor) -> float:
        return float(evidence_model(x.unsqueeze(0)).softmax(-1)[0, 0])

    s = insertion_deletion(evidence_model, image, region_map(), target=0)
    assert s.deletion_curve[0] == pytest.approx(prob(image), abs=1e-6)
    assert s.deletion_curve[-1] == pytest.approx(prob(torch.zeros_like(image)), abs=1e-6)
    assert s.insertion_curve[0] == pytest.approx(prob(blur_substrate(image)), abs=1e-6)
    assert s.insertion_curve[-1] == pytest.approx(prob(image), abs=1e-6)
    blurred = blur_substrate(image)
    assert blurred.shape == image.shape and not torch.allclose(blurred, image)


def test_any_number_of_classes_and_target(image):
    model = lambda b: torch.cat([evidence_model(b), torch.zeros(b.shape[0], 998)], dim=1)  # noqa: E731
    s = insertion_deletion(model, image, region_map(), target=0)
    assert 0 <= s.deletion <= s.insertion <= 1


@pytest.mark.parametrize("bad,match", [(np.zeros((10, 10)), "does not match"),
                                       (np.full((SIZE, SIZE), np.nan), "NaN")])
def test_bad_maps_are_rejected(image, bad, match):
    with pytest.raises(ValueError, match=match):
        insertion_deletion(evidence_model, image, bad, target=0)
