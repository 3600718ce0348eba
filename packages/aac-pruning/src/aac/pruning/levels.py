"""From a requested pruning level to "group g keeps k_g filters", and which ones.

Two ways to spread a level over the groups:

* **groupwise** (default): every group prunes the same fraction ``p``;
* **global** (``all_weights``): filters of all groups are ranked together by normalised importance
  and the lowest fraction ``p`` is pruned, so unimportant layers give up more.

In both, the kept count of a group is rounded *up* to a multiple of ``multiple_of`` (8 by
default, as in NNCF: hardware runs channel counts in such blocks) and never drops below one such
block; in global mode no group loses more than ``quota`` of its filters (NNCF has neither limit for
global ranking, which can empty a layer).

Rounding makes the measured rate a step function of ``p``. :meth:`LevelSolver.solve` therefore
searches ``p`` for the allocation whose *measured* rate (filters or FLOPs removed) is closest to
the request, so reading ``compression_rate`` back after setting it returns nearly the same number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

#: most of a group that global ranking may remove
GLOBAL_QUOTA = 0.9
_SEARCH_ITERATIONS = 40


def rounded_kept(channels: int, level: float, multiple_of: int) -> int:
    """Filters a group of ``channels`` keeps at ``level``: rounded up to a multiple, at least one block."""
    wanted = math.ceil(channels * (1.0 - level) / multiple_of - 1e-9) * multiple_of
    return min(channels, max(wanted, multiple_of))


def top_filters(scores: np.ndarray, count: int) -> np.ndarray:
    """Boolean mask of the ``count`` highest scores (ties keep the lower index)."""
    keep = np.zeros(len(scores), dtype=bool)
    keep[np.argsort(-scores, kind="stable")[:count]] = True
    return keep


class LevelSolver:
    """Kept counts per group for a level, and the level whose measured rate matches a target.

    :param channels: filters per group.
    :param measure: maps kept counts to the rate being controlled (filters or FLOPs removed).
    :param scores: per-group normalised importance for global ranking; None for groupwise levels.
    """

    def __init__(
        self,
        channels: Sequence[int],
        multiple_of: int,
        measure: Callable[[np.ndarray], float],
        scores: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.channels = np.asarray(channels, dtype=np.int64)
        self.multiple_of = multiple_of
        self.measure = measure
        self._order: np.ndarray | None = None
        if scores is not None:
            owner = np.concatenate([np.full(len(s), g) for g, s in enumerate(scores)]) if scores else np.zeros(0, int)
            values = np.concatenate(list(scores)) if scores else np.zeros(0)
            self._order = owner[np.argsort(values, kind="stable")]

    @property
    def quota(self) -> float:
        return 1.0 if self._order is None else GLOBAL_QUOTA

    def kept(self, level: float) -> np.ndarray:
        if self._order is None:
            fractions = np.full(len(self.channels), level)
        else:
            lowest = self._order[: int(level * len(self._order))]
            fractions = np.bincount(lowest, minlength=len(self.channels)) / np.maximum(self.channels, 1)
        fractions = np.minimum(fractions, self.quota)
        return np.array([rounded_kept(int(c), float(f), self.multiple_of) for c, f in zip(self.channels, fractions, strict=True)], dtype=np.int64)

    @property
    def maximal(self) -> float:
        """The highest rate any level reaches."""
        return self.measure(self.kept(1.0))

    def solve(self, target: float) -> np.ndarray:
        """Kept counts whose measured rate is closest to ``target`` (the lower one on a tie)."""
        low, high = 0.0, 1.0
        if self.measure(self.kept(high)) < target:
            return self.kept(high)
        for _ in range(_SEARCH_ITERATIONS):
            middle = (low + high) / 2.0
            if self.measure(self.kept(middle)) >= target:
                high = middle
            else:
                low = middle
        below, above = self.kept(low), self.kept(high)
        return above if abs(self.measure(above) - target) < abs(self.measure(below) - target) else below
