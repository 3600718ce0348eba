"""From a requested pruning level to "group g keeps k_g filters", and which ones.

Two ways to spread a level over the groups:

* **groupwise** (default): every group prunes the same fraction ``p``;
* **global** (``all_weights``): filters of all groups are ranked together by normalised importance
  and the lowest fraction ``p`` is pruned, so unimportant layers give up more.

In both, the kept count of a group is rounded *up* to a multiple of its unit and never drops below
one unit. The unit is ``filters_multiple_of`` (8 by default, as in NNCF: hardware runs channel
counts in such blocks), made a multiple of what the group's structure needs: a group read by a
grouped convolution keeps as many channels in each of its ``parts`` (so the kept count is a multiple
of ``parts``), an attention layer's group keeps whole heads (a multiple of the head size); where
both cannot hold below the group's size, the structure wins (:func:`group_unit`). In global
mode no group loses more than ``quota`` of its filters (NNCF has neither limit for global ranking,
which can empty a layer).

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


def group_unit(multiple_of: int, parts: int = 1, block: int = 1, channels: int | None = None) -> int:
    """The step of a group's kept count: a multiple of ``multiple_of`` made of whole blocks in every part.

    When no such step is smaller than the group (13 groups of a grouped convolution and
    ``multiple_of`` 8 would need 104 channels), the step is the smallest number of whole blocks in
    every part that reaches ``multiple_of``: the group stays prunable, at the structure's granularity.
    """
    structure = parts * block
    unit = math.lcm(multiple_of, structure)
    if channels is not None and unit >= channels:
        unit = structure * math.ceil(multiple_of / structure)
    return unit


def top_filters(scores: np.ndarray, count: int, parts: int = 1, block: int = 1) -> np.ndarray:
    """Boolean mask of the ``count`` highest scores (ties keep the lower index).

    With ``parts`` > 1 the channels form that many equal parts that keep the same positions (ranked by
    their scores summed over the parts, as Torch-Pruning does for grouped convolutions), so a grouped
    convolution reading them loses the same input columns in every group; with ``block`` > 1 whole
    blocks are kept or removed (ranked by their summed scores).
    """
    blocks = np.asarray(scores, dtype=np.float64).reshape(parts, -1, block).sum(axis=(0, 2))
    keep = np.zeros(len(blocks), dtype=bool)
    keep[np.argsort(-blocks, kind="stable")[: count // parts // block]] = True
    return np.tile(np.repeat(keep, block), parts)


class LevelSolver:
    """Kept counts per group for a level, and the level whose measured rate matches a target.

    :param channels: filters per group.
    :param units: the step of each group's kept count (:func:`group_unit`), or one for all.
    :param measure: maps kept counts to the rate being controlled (filters or FLOPs removed).
    :param scores: per-group normalised importance for global ranking; None for groupwise levels.
    """

    def __init__(
        self,
        channels: Sequence[int],
        units: int | Sequence[int],
        measure: Callable[[np.ndarray], float],
        scores: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.channels = np.asarray(channels, dtype=np.int64)
        self.units = np.broadcast_to(np.asarray(units, dtype=np.int64), self.channels.shape)
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
        return np.array(
            [rounded_kept(int(c), float(f), int(u)) for c, f, u in zip(self.channels, fractions, self.units, strict=True)], dtype=np.int64
        )

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
