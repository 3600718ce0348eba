"""Importance, prune counts and mask selection: framework-neutral, NumPy only."""

from __future__ import annotations

import numpy as np
import pytest

from aac.sparsity.levels import global_masks, importance, keep_mask, local_masks, prune_count, weighted_level


def test_prune_count_rounds_to_nearest_and_checks_range() -> None:
    assert [prune_count(level, 10) for level in (0.0, 0.04, 0.05, 0.26, 0.5, 1.0)] == [0, 0, 1, 3, 5, 10]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prune_count(1.5, 10)


def test_importance_kinds() -> None:
    w = np.array([3.0, -4.0])
    assert importance(w, "abs").tolist() == [3.0, 4.0]
    assert importance(w, "normed_abs").tolist() == pytest.approx([0.6, 0.8])
    assert importance(np.zeros(3), "normed_abs").tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="weight_importance"):
        importance(w, "l2")


def test_keep_mask_prunes_exactly_k_and_breaks_ties_by_index() -> None:
    scores = np.array([0.5, 0.1, 0.1, 0.1, 0.9, 0.3])
    keep, threshold = keep_mask(scores, 0.34)  # round(2.04) = 2 of the three tied 0.1s
    assert keep.tolist() == [True, False, False, True, True, True]
    assert threshold == pytest.approx(0.1)
    assert keep_mask(scores, 0.0)[0].all() and keep_mask(scores, 0.0)[1] == float("-inf")
    assert not keep_mask(scores, 1.0)[0].any()


def test_keep_mask_keeps_the_highest_scores() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((7, 9))
    keep, threshold = keep_mask(scores, 0.37)
    assert keep.shape == scores.shape
    assert (~keep).sum() == prune_count(0.37, scores.size)
    assert scores[keep].min() >= threshold >= scores[~keep].max()


def test_global_masks_rank_layers_together_and_local_masks_do_not() -> None:
    small, large = np.full(10, 0.1), np.full(10, 1.0)
    masks, _ = global_masks([small, large], 0.5)
    assert not masks[0].any() and masks[1].all()  # globally the small layer goes first
    per_layer, thresholds = local_masks([small + np.arange(10), large + np.arange(10)], [0.2, 0.6])
    assert [(~m).sum() for m in per_layer] == [2, 6]
    assert len(thresholds) == 2


def test_weighted_level() -> None:
    assert weighted_level([0.2, 0.6], [10, 30]) == pytest.approx(0.5)
    assert weighted_level([], []) == 0.0
