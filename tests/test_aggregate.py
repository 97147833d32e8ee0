"""The paper's Monte Carlo aggregation and its rule for non-positive mean fitness."""

from __future__ import annotations

import numpy as np
import torch

from decam.search.aggregators import PaperThreshold, paper_selection


def test_keeps_individuals_above_two_thirds_of_the_mean():
    fitness = torch.tensor([1.0, 2.0, 3.0, 6.0])  # mean 3 → threshold 2
    assert paper_selection(fitness).tolist() == [False, False, True, True]


def test_map_is_sum_of_selected_masks_divided_by_max():
    masks = torch.zeros(3, 2, 2)
    masks[0, 0, 0] = masks[1, 0, 0] = masks[1, 1, 1] = masks[2, 1, 0] = 1.0
    sal = PaperThreshold().finalize(masks, torch.tensor([5.0, 5.0, 0.1]))  # third one dropped
    assert torch.equal(sal, torch.tensor([[1.0, 0.0], [0.0, 0.5]]))


def test_non_positive_mean_uses_fitness_shifted_to_its_minimum():
    fitness = torch.tensor([-9.0, -6.0, -3.0, 0.0])  # mean -4.5, min -9 → threshold -9 + 2/3 * 4.5 = -6
    assert paper_selection(fitness).tolist() == [False, False, True, True]
    # the same ranks as a shifted, positive population: the rule is invariant to a logit offset
    assert paper_selection(fitness + 9.0).tolist() == [False, False, True, True]


def test_equal_fitness_keeps_everybody():
    assert paper_selection(torch.zeros(4)).all()
    assert paper_selection(torch.full((4,), -2.0)).all()


def test_all_zero_masks_give_an_all_zero_map():
    sal = PaperThreshold().finalize(torch.zeros(4, 3, 3), torch.ones(4))
    assert torch.equal(sal, torch.zeros(3, 3))


def test_evaluated_masks_estimate_contrasts_kept_and_removed_scores():
    from decam.search.aggregators import EvaluatedMasks

    agg = EvaluatedMasks(score="logit")
    masks = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]])  # 3 masks over a 1x2 image
    agg.observe(masks[:2], {"logit": torch.tensor([4.0, 1.0])})
    agg.observe(masks[2:], {"logit": torch.tensor([3.0])})
    # left pixel: kept → mean(4, 3) = 3.5, removed → 1; right: kept → mean(1, 3) = 2, removed → 4
    sal = agg.finalize(masks, torch.zeros(3))
    assert torch.allclose(sal, torch.tensor([[1.0, 0.0]]))  # 2.5 vs -2, scaled to [0, 1]


def test_evaluated_masks_localize_the_oracles_region(oracle, bright_image):
    import decam

    from conftest import PAPER_CONFIG

    exp = decam.explain(oracle, bright_image, aggregator="evaluated", generations=20, popsize=16, config=PAPER_CONFIG)
    region = oracle.region_mask(48, 48).numpy()
    top = np.argsort(exp.saliency, axis=None)[::-1][: region.sum()]  # as many pixels as the region has
    assert region.flatten()[top].mean() > 0.7  # the region is 11 % of the image
