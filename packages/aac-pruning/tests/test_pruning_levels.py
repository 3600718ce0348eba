"""From a level to kept filters: rounding, quotas, and the search for the closest measured rate."""

import numpy as np
import pytest

from aac.pruning.levels import GLOBAL_QUOTA, LevelSolver, group_unit, rounded_kept, top_filters


@pytest.mark.parametrize(
    ("channels", "level", "multiple", "kept"),
    [
        (64, 0.5, 8, 32),
        (64, 0.3, 8, 48),
        (64, 0.99, 8, 8),
        (12, 0.5, 8, 8),
        (6, 0.5, 8, 6),
        (32, 0.0, 8, 32),
        (30, 0.1, 4, 28),
    ],
)
def test_kept_counts_round_up_to_a_multiple(channels, level, multiple, kept):
    assert rounded_kept(channels, level, multiple) == kept


def test_top_filters_keeps_the_highest_scores():
    assert top_filters(np.array([0.3, 0.1, 0.9, 0.1]), 2).tolist() == [True, False, True, False]


def _filter_rate(channels):
    total = sum(channels)
    return lambda kept: 1.0 - float(np.sum(kept)) / total


def test_structured_groups_keep_the_same_positions_per_part_and_whole_blocks():
    scores = np.array([5, 1, 3, 0, 4, 2, 1, 9], dtype=float)  # two parts of four
    assert top_filters(scores, 4, parts=2).tolist() == [True, False, False, True, True, False, False, True]
    assert top_filters(scores, 4, block=2).tolist() == [True, True, False, False, False, False, True, True]
    assert top_filters(scores, 4, parts=2, block=2).tolist() == [False, False, True, True, False, False, True, True]
    assert group_unit(8, parts=32) == 32 and group_unit(8, parts=10) == 40 and group_unit(8, block=32) == 32
    assert group_unit(8, parts=13, channels=104) == 13 and group_unit(8, parts=13, channels=208) == 104
    solver = LevelSolver([32, 96], [8, 32], lambda kept: 1 - kept.sum() / 128)
    assert solver.kept(0.5).tolist() == [16, 64]  # 48 of 96 rounds up to two 32-channel heads


def test_solver_finds_the_closest_measured_rate():
    channels = [16, 64, 64]
    solver = LevelSolver(channels, 8, _filter_rate(channels))
    for target in (0.0, 0.25, 0.5, 0.7):
        kept = solver.solve(target)
        achievable = {round(solver.measure(solver.kept(level)), 9) for level in np.linspace(0, 1, 401)}
        best = min(achievable, key=lambda rate: abs(rate - target))
        assert solver.measure(kept) == pytest.approx(best)
    assert solver.maximal == pytest.approx(1 - 24 / 144)  # one block of 8 per group
    assert solver.solve(0.99).tolist() == [8, 8, 8]


def test_global_ranking_prunes_unimportant_groups_first_within_a_quota():
    channels = [16, 16]
    scores = [np.linspace(0.01, 0.02, 16), np.linspace(0.5, 1.0, 16)]
    solver = LevelSolver(channels, 1, _filter_rate(channels), scores)
    kept = solver.solve(0.5)
    assert kept[0] < kept[1]
    assert kept[0] >= round(16 * (1 - GLOBAL_QUOTA))  # the quota keeps 10% of the weak group
    assert solver.measure(kept) == pytest.approx(0.5, abs=1 / 32)
