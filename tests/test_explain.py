"""End-to-end behaviour of decam.explain on black boxes whose evidence region is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

import decam
from decam.errors import InputError, ModelOutputError

from conftest import PAPER_CONFIG

TINY = {"generations": 12, "popsize": 16, "config": PAPER_CONFIG}


def mass_inside(saliency: np.ndarray, region: torch.Tensor) -> float:
    s = torch.as_tensor(saliency)
    return float(s[region].sum() / s.sum())


def test_saliency_concentrates_on_the_oracles_evidence_region(oracle, bright_image):
    exp = decam.explain(oracle, bright_image, alpha=20.0, generations=150, popsize=16, config=PAPER_CONFIG)
    region = oracle.region_mask(48, 48)
    area = region.float().mean().item()  # 11 % of the image
    assert mass_inside(exp.saliency, region) > 0.45 > 4 * area
    assert exp.saliency[region.numpy()].mean() > 5 * exp.saliency[~region.numpy()].mean()
    peak = np.unravel_index(exp.saliency.argmax(), exp.saliency.shape)
    assert region[peak]


def test_explanation_fields(oracle, bright_image):
    exp = decam.explain(oracle, bright_image, **TINY)
    assert exp.saliency.shape == (48, 48) and exp.saliency.dtype == np.float32
    assert exp.saliency.min() >= 0 and exp.saliency.max() == pytest.approx(1.0)
    assert exp.target == 0  # top-1 of the unmasked image
    assert exp.queries == oracle.calls == 16 * (12 + 1) + 1  # initial population + one per generation + probe
    assert len(exp.history) == 12 and exp.history[-1]["best"] >= exp.history[0]["best"]
    assert exp.config["searcher"]["popsize"] == 16 and exp.seconds > 0


def test_same_seed_same_map_different_seed_different_map(oracle, bright_image):
    a = decam.explain(oracle, bright_image, seed=1, **TINY).saliency
    b = decam.explain(oracle, bright_image, seed=1, **TINY).saliency
    c = decam.explain(oracle, bright_image, seed=2, **TINY).saliency
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_never_asks_for_gradients(oracle, bright_image):
    def no_grad_model(x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.requires_grad:
            raise AssertionError("decam asked for gradients")
        return oracle(x)

    exp = decam.explain(no_grad_model, bright_image, **TINY)
    assert exp.saliency.max() > 0


def test_budget_caps_the_number_of_queries(oracle, bright_image):
    exp = decam.explain(oracle, bright_image, budget=200, popsize=16, config=PAPER_CONFIG)
    assert exp.queries <= 200 + 1 and exp.queries > 200 - 16


def test_explicit_target(oracle, bright_image):
    assert decam.explain(oracle, bright_image, target=1, **TINY).target == 1


def test_target_outside_the_models_classes_is_an_input_error(oracle, bright_image):
    with pytest.raises(InputError, match="outside the model's 2 classes"):
        decam.explain(oracle, bright_image, target=5, **TINY)


@pytest.mark.parametrize(
    "model, message",
    [
        (lambda x: torch.full((x.shape[0], 3), float("nan")), "NaN"),
        (lambda x: torch.zeros(x.shape[0]), "expected logits"),
        (lambda x: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_broken_models_give_model_output_errors(model, message, bright_image):
    with pytest.raises(ModelOutputError, match=message):
        decam.explain(model, bright_image, **TINY)


@pytest.mark.parametrize("fill", ["black", "mean", "blur"])
def test_fill_decides_what_eliminated_pixels_become(fill):
    seen = []

    def model(x):
        seen.append(x.clone())
        return torch.stack([x.mean(dim=(1, 2, 3)), torch.zeros(x.shape[0])], 1)

    image = torch.rand(3, 32, 32) * 0.5 + 0.25
    expected = {
        "black": torch.zeros_like(image),
        "mean": image.mean(dim=(1, 2), keepdim=True).expand_as(image),
        "blur": TF.gaussian_blur(image[None], kernel_size=[11, 11], sigma=[5.0, 5.0])[0],
    }[fill]
    decam.explain(model, image, fill=fill, generations=1, popsize=8)
    queries = torch.cat(seen[1:])  # the first call scores the unmasked image
    kept = (queries - image).abs().amax(dim=1) < 1e-5
    filled = (queries - expected).abs().amax(dim=1) < 1e-5
    assert (kept | filled).all()  # every pixel is either the image's or the fill's
    assert filled[~kept].numel() > 0.1 * kept.numel()  # and many were eliminated


def test_pil_image_and_path_are_resized_to_the_model_input(tmp_path, oracle):
    Image.new("RGB", (300, 200), (255, 255, 255)).save(tmp_path / "white.png")
    from decam.models import from_callable

    model = from_callable(oracle, input_size=(48, 48))
    exp = decam.explain(model, tmp_path / "white.png", **TINY)
    assert exp.saliency.shape == (48, 48)
