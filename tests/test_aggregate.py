"""The paper's Monte Carlo aggregation and its rule for non-positive mean fitness."""

from __future__ import annotations

import torch

from decam.aggregate import PaperThreshold, paper_selection


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
