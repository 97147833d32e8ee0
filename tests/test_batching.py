"""Several images searched at once share the model's batches, with the same maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decam.errors import InputError
from decam.search.explainer import Explainer
from conftest import paper_config
from decam.testing import BoxOracle


class CountingOracle(BoxOracle):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.batch_sizes: list[int] = []

    def __call__(self, x):
        self.batch_sizes.append(x.shape[0])
        return super().__call__(x)


def images() -> list[torch.Tensor]:
    return [torch.ones(3, 48, 48) * v for v in (1.0, 0.8, 0.6)]


def explainer(model) -> Explainer:
    cfg = paper_config("generations=6", "searcher.popsize=8", "batch_size=64")
    return Explainer(model, cfg)


def test_populations_of_several_images_share_one_forward_and_give_the_same_maps():
    shared_model = CountingOracle((8, 30, 24, 46))
    results = dict(explainer(shared_model).explain_many(images(), images_per_batch=3))
    search_batches = [b for b in shared_model.batch_sizes if b > 1]
    assert search_batches and all(b == 3 * 8 for b in search_batches)  # 3 populations of 8 per call

    alone = explainer(BoxOracle((8, 30, 24, 46)))
    for i, image in enumerate(images()):
        assert np.array_equal(results[i].saliency, alone.explain(image).saliency)


def test_default_group_fills_the_batch_size():
    model = CountingOracle((8, 30, 24, 46))
    list(explainer(model).explain_many(images() * 4))  # 12 images, popsize 8, batch 64 → 8 at a time
    assert max(model.batch_sizes) == 64


def test_a_failing_image_is_reported_and_the_others_finish():
    model = BoxOracle((8, 30, 24, 46))
    batch = [images()[0], torch.ones(2, 48, 48), images()[1]]  # the middle one has 2 channels
    results = dict(explainer(model).explain_many(batch, images_per_batch=3))
    assert isinstance(results[1], InputError)
    assert results[0].saliency.max() == pytest.approx(1.0) and results[2].saliency.max() == pytest.approx(1.0)
