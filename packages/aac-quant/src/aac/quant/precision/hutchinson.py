"""Hutchinson's estimator of average Hessian traces, for HAWQ - the averaging and stopping rule, minus the framework.

For a random vector ``v`` of independent +-1 entries, ``E[v^T H v] = trace(H)``. A backend's draw
(``aac.quant.torch.hessian``, ``aac.quant.tf.hessian``) takes one ``v`` per weight and returns ``v^T H v``
averaged over its batches, weighted by their sizes; ``H v`` costs it one more backward pass. This module
averages the draws: they stop after ``iterations`` or once the mean trace of all weights moves by less
than ``tolerance`` (relative) between two iterations. A weight's *average* trace is its trace divided
by its number of entries (NNCF's convention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def average_traces(draw: Callable[[], Sequence[float]], sizes: Sequence[int], iterations: int, tolerance: float) -> list[float]:
    """The average trace of each weight, from ``draw()`` (one ``v^T H v`` per weight, a fresh ``v`` per call).

    :param sizes: the number of entries of each weight, in the order of the draws.
    :param iterations: the most draws (at least one is made).
    """
    sums = [0.0] * len(sizes)
    mean = None
    iteration = 0
    for iteration in range(1, max(iterations, 1) + 1):
        sums = [s + e for s, e in zip(sums, draw(), strict=True)]
        current = sum(sums) / iteration
        if mean is not None and abs(current - mean) <= tolerance * abs(mean):
            break
        mean = current
    return [s / iteration / size for s, size in zip(sums, sizes, strict=True)]
