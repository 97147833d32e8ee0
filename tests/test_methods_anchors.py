"""The black-box anchors decam is compared with at equal query budgets: each returns a finite map,
never spends more than its budget, finds an oracle's evidence, repeats itself under a seed, and
perturbs images with the fill it was given; Sobol's and HSIC's estimators are checked on their own."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest
import torch

from decam.config import validate_section
from decam.errors import ConfigError
from decam.evaluation.methods import METHODS, Rise, create_method
from decam.evaluation.methods.hsic import hsic_scores
from decam.evaluation.methods.occlusion import fit_window
from decam.evaluation.methods.sobol import jansen_total_indices, sobol_designs
from decam.models import LoadedModel
from decam.substrates import blur
from decam.testing.oracles import BoxOracle

SIZE = 32
BUDGET = 512
ANCHORS = ["rise", "sobol", "hsic", "lime", "kernelshap", "occlusion", pytest.param("shap", marks=pytest.mark.slow)]
OPTIONS = {"lime": {"n_segments": 16}, "kernelshap": {"n_segments": 16}, "shap": {"blur": 16}}
BOXES = [(4, 18, 14, 28), (16, 2, 28, 12)]  # (top, left, bottom, right): off the diagonal, so a transposed map fails
NORMALIZATION = ((0.2, 0.4, 0.6), (0.5, 0.25, 0.5))


def bright_box_image(box: tuple[int, int, int, int]) -> torch.Tensor:
    """A dim, slightly noisy image with a bright box: blur fills and superpixels both see the box."""
    top, left, bottom, right = box
    image = torch.full((3, SIZE, SIZE), 0.2)
    image[:, top:bottom, left:right] = 1.0
    return image + 0.05 * torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def oracle_model(box, image) -> LoadedModel:
    return LoadedModel(BoxOracle(box, reference=image), (SIZE, SIZE), None, None, "oracle", None)


class Recorder:
    """A black box that keeps every image it is shown; its class-0 logit is the image's mean."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return torch.stack([x.mean(dim=(1, 2, 3)), torch.zeros(x.shape[0])], dim=1)

    def seen(self) -> torch.Tensor:
        return torch.cat(self.inputs)


def test_the_anchors_are_registered_and_installed():
    names = {"rise", "sobol", "hsic", "shap", "kernelshap", "lime", "occlusion"}
    assert names <= set(METHODS)
    assert names <= {ep.name for ep in entry_points(group="decam.methods")}


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("name", ANCHORS)
def test_each_anchor_finds_the_oracle_evidence_within_its_budget(name, box):
    image = bright_box_image(box)
    method = create_method(name, oracle_model(box, image), budget=BUDGET, **OPTIONS.get(name, {}))
    sal = method(image, 0)
    assert sal.shape == (SIZE, SIZE) and sal.dtype == np.float32 and np.isfinite(sal).all()
    assert method.queries <= BUDGET and (name == "occlusion" or method.queries > BUDGET - 52)
    top, left, bottom, right = box
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    inside[top:bottom, left:right] = True
    best = np.argsort(sal.ravel(), kind="stable")[::-1][: inside.sum()]
    assert inside.ravel()[best].mean() >= 0.7, f"{name}: top pixels mostly outside the evidence"
    assert np.array_equal(sal, method(image, 0))  # seeded


@pytest.mark.parametrize("budget", [103, 260, 777])
@pytest.mark.parametrize("name", [n for n in ANCHORS if n != "shap"])
def test_no_anchor_spends_more_than_its_budget(name, budget):
    image = bright_box_image(BOXES[0])
    method = create_method(name, oracle_model(BOXES[0], image), budget=budget, **OPTIONS.get(name, {}))
    method(image, 0)
    assert 0 < method.queries <= budget
    if name in ("rise", "hsic", "lime", "kernelshap"):
        assert method.queries == budget
    if name == "sobol":
        assert method.queries == budget // 51 * 51


@pytest.mark.slow
@pytest.mark.parametrize("budget", [7, 64, 101])
def test_shap_never_spends_more_than_its_budget(budget):
    image = bright_box_image(BOXES[0])
    method = create_method("shap", oracle_model(BOXES[0], image), budget=budget, blur=16)
    method(image, 0)
    assert budget - 2 <= method.queries <= budget


@pytest.mark.slow
def test_shap_is_shaps_partition_explainer_with_its_blur_masker():
    """decam builds shap's masker once per shape and hands it each image's blur: the same maps as
    shap's own ``"blur(k,k)"`` masker, image after image."""
    import shap

    first = bright_box_image(BOXES[0])
    second = 0.8 * first + 0.2 * torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    method = create_method("shap", oracle_model(BOXES[0], first), max_evals=128, blur=8, seed=3)
    method(first, 0)
    ours = method(second, 0)
    x = second.permute(1, 2, 0).numpy().copy()

    def scores(batch: np.ndarray) -> np.ndarray:
        logits = method.model.forward(torch.from_numpy(batch).permute(0, 3, 1, 2))
        return logits[:, :1].double().numpy()

    np.random.seed(3)  # shap breaks ties with numpy's global generator
    theirs = shap.PartitionExplainer(scores, shap.maskers.Image("blur(8,8)", x.shape))(
        x[None], max_evals=128, batch_size=64, silent=True).values[0, ..., 0].sum(-1)
    assert np.abs(theirs).max() > 0.01 and np.allclose(ours, theirs, rtol=1e-4, atol=1e-7)


def test_the_forward_path_refuses_queries_past_the_budget():
    rise = create_method("rise", LoadedModel(Recorder(), (SIZE, SIZE)), budget=16, batch_size=8)
    rise.n_masks = 24  # a method whose own arithmetic went wrong
    with pytest.raises(RuntimeError, match="over its budget of 16"):
        rise(torch.rand(3, SIZE, SIZE), 0)
    assert rise.queries == 16


def test_budgets_too_small_for_one_unit_are_config_errors():
    model = LoadedModel(Recorder(), (SIZE, SIZE))
    for name, budget in (("sobol", 101), ("hsic", 1), ("shap", 3), ("occlusion", 1)):
        with pytest.raises(ConfigError, match="budget"):
            create_method(name, model, budget=budget)
    assert create_method("sobol", model, budget=102).designs == 2
    assert create_method("sobol", model, grid=4, budget=1633).designs == 1633 // 18


def test_budget_and_fill_are_validated_like_every_option():
    for name in ("rise", "sobol", "hsic", "shap", "kernelshap", "lime", "occlusion"):
        assert validate_section(name, METHODS, {"name": name, "budget": 1633}, skip=1)["budget"] == 1633
        assert validate_section(name, METHODS, {"name": name}, skip=1)["budget"] is None
        with pytest.raises(ConfigError, match="out of range"):
            validate_section(name, METHODS, {"name": name, "budget": 0}, skip=1)
    with pytest.raises(ConfigError, match="expected one of"):
        validate_section("rise", METHODS, {"name": "rise", "fill": "grey"}, skip=1)


@pytest.mark.parametrize("fill", ["zero", "black", "blur"])
def test_rise_eliminated_pixels_take_exactly_the_fill(fill):
    recorder = Recorder()
    model = LoadedModel(recorder, (SIZE, SIZE), None, None, "recorder", None, normalization=NORMALIZATION)
    image = 0.3 + 0.6 * torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    rise = create_method("rise", model, n_masks=16, batch_size=8, seed=5, fill=fill)
    rise(image, 0)
    gen = torch.Generator().manual_seed(5)
    masks = torch.cat([Rise.masks(rise, 8, SIZE, SIZE, gen) for _ in range(2)]).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor(NORMALIZATION[0]).view(3, 1, 1)
    expected = {"zero": mean.expand(3, SIZE, SIZE), "black": torch.zeros(3, SIZE, SIZE), "blur": blur(image)}[fill]
    seen = recorder.seen()
    gone, kept = masks == 0, masks == 1
    assert gone.float().mean() > 0.02 and kept.float().mean() > 0.02  # bilinear masks: exact 0 and 1 in patches
    assert torch.equal(seen[gone], expected.expand_as(seen)[gone])
    assert torch.allclose(seen[kept], image.expand_as(seen)[kept])
    if fill == "zero":  # 0 in the model's normalized input, as in the RISE authors' code
        std = torch.tensor(NORMALIZATION[1]).view(1, 3, 1, 1)
        assert ((seen - mean) / std)[gone].abs().max() < 1e-6


def test_zero_fill_without_a_known_normalization_is_black():
    recorder = Recorder()
    image = torch.rand(3, SIZE, SIZE)
    create_method("rise", LoadedModel(recorder, (SIZE, SIZE)), n_masks=8, p=0.1, fill="zero")(image, 0)
    seen = recorder.seen()
    assert (seen == 0).float().mean() > 0.3 and torch.all((seen == 0) | (seen > 0))


@pytest.mark.parametrize("fill", ["zero", "black", "blur"])
@pytest.mark.parametrize("name", ["hsic", "kernelshap", "lime", "occlusion"])
def test_on_off_perturbations_show_each_pixel_as_the_image_or_the_fill(name, fill):
    recorder = Recorder()
    model = LoadedModel(recorder, (SIZE, SIZE), None, None, "recorder", None, normalization=NORMALIZATION)
    image = bright_box_image(BOXES[0])
    create_method(name, model, budget=64, fill=fill, **OPTIONS.get(name, {}))(image, 0)
    seen = recorder.seen()
    mean = torch.tensor(NORMALIZATION[0]).view(3, 1, 1)
    filled = {"zero": mean.expand(3, SIZE, SIZE), "black": torch.zeros(3, SIZE, SIZE), "blur": blur(image)}[fill]
    as_image = ((seen - image).abs() < 1e-6).all(dim=1)  # fill + 1 · (image − fill) may round
    as_fill = (seen == filled).all(dim=1)
    assert torch.all(as_image | as_fill)
    assert (as_fill & ~as_image).any()  # something was removed


def test_sobol_design_replicates_a_with_one_column_of_b():
    n, dim = 8, 5
    design = sobol_designs(dim, n)
    a, b, c = design[:n], design[n : 2 * n], design[2 * n :].reshape(dim, n, dim)
    assert design.shape == (n * (dim + 2), dim) and not np.array_equal(a, b)
    for i in range(dim):
        others = [j for j in range(dim) if j != i]
        assert np.array_equal(c[i][:, i], b[:, i]) and np.array_equal(c[i][:, others], a[:, others])


def test_jansen_recovers_known_total_indices():
    # additive f = Σ a_i x_i, x_i ~ U(0, 1): S_Ti = a_i² / Σ a_j² (no interactions)
    n, weights = 1024, np.array([1.0, 2.0, 3.0, 0.0])
    design = sobol_designs(4, n)
    st = jansen_total_indices(torch.from_numpy(design @ weights), n, 4).numpy()
    assert st == pytest.approx(weights**2 / (weights**2).sum(), abs=2e-3)
    # Ishigami (a=7, b=0.1) on [-π, π]³: total indices 0.5576, 0.4424, 0.2437 (interaction of x1 and x3)
    x = (sobol_designs(3, n) * 2 - 1) * np.pi
    f = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    st = jansen_total_indices(torch.from_numpy(f), n, 3).numpy()
    assert st == pytest.approx([0.5576, 0.4424, 0.2437], abs=0.01)
    assert jansen_total_indices(torch.ones(n * 5), n, 3).tolist() == [0.0, 0.0, 0.0]  # constant output


def test_hsic_matches_the_kernel_formula_and_ranks_the_inputs_the_output_depends_on():
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(60, 6, generator=gen) < 0.5).double()
    y = 2 * x[:, 0] + x[:, 1] * x[:, 2] + 0.1 * torch.rand(60, generator=gen, dtype=torch.float64)
    n = len(y)
    sigma = torch.pdist(y[:, None]).median()
    gram = torch.exp(-((y[:, None] - y[None, :]) ** 2) / (2 * sigma**2))
    h = torch.eye(n, dtype=torch.float64) - 1 / n
    direct = torch.stack([torch.trace((1.5 - (x[:, i, None] - x[None, :, i]) ** 2) @ h @ gram @ h)
                          for i in range(6)]) / (n - 1) ** 2
    scores = hsic_scores(x, y)
    assert torch.allclose(scores, direct, atol=1e-12)
    assert scores.argmax() == 0 and scores[1:3].min() > scores[3:].max()


def test_occlusion_window_fits_the_budget():
    assert fit_window(224, 224, None, None, None) == (16, 8)  # 27² windows + 1 = 730 queries
    assert fit_window(224, 224, 1633, None, None) == (12, 6)  # 37² + 1 = 1,370; stride 5 would need 1,937
    assert fit_window(224, 224, 1633, 30, None) == (30, 5)  # 40² + 1 = 1,601
    with pytest.raises(ConfigError, match="over budget"):
        fit_window(224, 224, 100, 16, 8)
    with pytest.raises(ConfigError, match="larger than window"):
        fit_window(224, 224, None, 4, 8)
