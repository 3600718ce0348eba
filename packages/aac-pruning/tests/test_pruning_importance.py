"""Filter importance functions against direct definitions."""

import numpy as np
import pytest

from aac.pruning.importance import IMPORTANCE, geometric_median, l1_norm, l2_norm, normalized

FILTERS = np.random.default_rng(0).normal(size=(6, 27)).astype(np.float32)


def test_l1_and_l2():
    np.testing.assert_allclose(l1_norm(FILTERS), [np.abs(f).sum() for f in FILTERS], rtol=1e-6)
    np.testing.assert_allclose(l2_norm(FILTERS), [np.linalg.norm(f) for f in FILTERS], rtol=1e-6)


def test_geometric_median_is_the_summed_distance_to_the_other_filters():
    expected = [sum(np.linalg.norm(a.astype(np.float64) - b) for b in FILTERS) for a in FILTERS]
    np.testing.assert_allclose(geometric_median(FILTERS), expected, rtol=1e-6)


def test_a_filter_next_to_the_median_scores_lowest():
    filters = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert np.argmin(geometric_median(filters)) == 0
    assert np.argmin(l2_norm(filters)) == 0  # here all agree; the median ignores scale below


def test_geometric_median_ranks_by_redundancy_not_size():
    filters = np.array([[10.0, 10.0], [10.1, 10.0], [-3.0, 0.0]])
    assert np.argmax(l2_norm(filters)) in (0, 1)
    assert np.argmax(geometric_median(filters)) == 2  # the odd one out is the one to keep


@pytest.mark.parametrize("name", ["L1", "L2", "geometric_median"])
def test_registry_and_normalisation(name):
    scores = IMPORTANCE[name](FILTERS)
    assert scores.shape == (6,)
    assert np.linalg.norm(normalized(scores)) == pytest.approx(1.0)
    assert not normalized(np.zeros(3)).any()
