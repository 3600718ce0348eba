"""The averaging and stopping rule of Hutchinson's estimator, shared by the torch and Keras HAWQ traces."""

from __future__ import annotations

import itertools

import pytest

from aac.quant.precision.hutchinson import average_traces


def test_draws_stop_once_the_mean_trace_settles_and_traces_are_per_entry() -> None:
    draws = iter([[4.0, 8.0], [4.0, 8.0], [100.0, 100.0]])
    calls = itertools.count()

    def draw() -> list[float]:
        next(calls)
        return next(draws)

    # the second draw leaves the mean trace where the first put it: no third draw
    assert average_traces(draw, [2, 4], iterations=10, tolerance=1e-3) == [2.0, 2.0]
    assert next(calls) == 2


def test_draws_stop_at_the_iteration_limit_and_at_least_one_is_made() -> None:
    values = itertools.count(1.0)
    assert average_traces(lambda: [next(values)], [1], iterations=3, tolerance=0.0) == [pytest.approx(2.0)]  # (1 + 2 + 3) / 3
    assert average_traces(lambda: [5.0], [5], iterations=0, tolerance=0.0) == [1.0]
