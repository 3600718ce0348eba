"""Range statistics for initialization (NumPy only)."""

from __future__ import annotations

import numpy as np
import pytest

from aac.quant.ranges import RANGE_TYPES, SAMPLE_PER_BATCH, RangeCollector


def batches() -> list[np.ndarray]:
    return [np.array([[-1.0, 2.0], [0.0, 4.0]]), np.array([[-3.0, 1.0], [0.5, 0.5]])]


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [
        ("min_max", -3.0, 4.0),
        ("mean_min_max", -2.0, 2.5),
        ("mixed_min_max", -3.0, 2.5),
    ],
)
def test_min_max_family_per_tensor(kind: str, low: float, high: float) -> None:
    collector = RangeCollector(kind)
    for batch in batches():
        collector.update(batch)
    result = collector.result()
    assert (float(result[0]), float(result[1])) == (low, high)
    assert result[0].shape == ()


def test_per_channel_along_an_axis() -> None:
    collector = RangeCollector("min_max", axis=1)
    for batch in batches():
        collector.update(batch)
    low, high = collector.result()
    assert low.tolist() == [-3.0, 0.5] and high.tolist() == [0.5, 4.0]
    last = RangeCollector("min_max", axis=-1)
    last.update(np.arange(6.0).reshape(3, 2))
    assert last.result()[1].tolist() == [4.0, 5.0]


def test_percentile_and_mean_percentile() -> None:
    values = np.arange(1001.0)
    collector = RangeCollector("percentile", min_percentile=10, max_percentile=90)
    collector.update(values)
    assert collector.result() == pytest.approx((100.0, 900.0))
    mean = RangeCollector("mean_percentile", min_percentile=0, max_percentile=100)
    mean.update(np.array([0.0, 10.0]))
    mean.update(np.array([2.0, 4.0]))
    assert mean.result() == pytest.approx((1.0, 7.0))


def test_threesigma_is_median_plus_minus_three_mad() -> None:
    collector = RangeCollector("threesigma")
    collector.update(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert collector.result() == pytest.approx((0.0, 6.0))  # median 3, MAD 1: the outlier is ignored


def test_sample_based_statistics_keep_a_bounded_sample() -> None:
    collector = RangeCollector("percentile", min_percentile=0, max_percentile=100)
    collector.update(np.linspace(-1, 1, 10 * SAMPLE_PER_BATCH))
    assert collector._samples[0].shape == (1, SAMPLE_PER_BATCH)
    low, high = collector.result()
    assert -1.0 <= low < -0.99 and 0.99 < high <= 1.0


def test_sign_detection_and_errors() -> None:
    collector = RangeCollector("mean_percentile", min_percentile=5, max_percentile=95)
    collector.update(np.array([-0.001] + [1.0] * 99))
    assert collector.has_negative()  # the true minimum, not the percentile, decides the sign
    with pytest.raises(ValueError, match="no values"):
        RangeCollector().result()
    with pytest.raises(ValueError, match="unknown range initializer"):
        RangeCollector("threshold")
    assert set(RANGE_TYPES) == {"mixed_min_max", "min_max", "mean_min_max", "threesigma", "percentile", "mean_percentile"}
