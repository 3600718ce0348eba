"""Level schedules: pure functions from a (possibly fractional) epoch to a compression level.

They know nothing about sparsity or any framework, so pruning and future backends can share them
(see the note in this package's README about moving them to ``aac.core``). Every function is
defined for any epoch ``>= 0`` and clamps at its target once the schedule is over.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence


def progress(epoch: float, target_epoch: float) -> float:
    """Fraction of the schedule elapsed at ``epoch`` (1.0 from ``target_epoch`` on, and for a zero-length one)."""
    if target_epoch <= 0:
        return 1.0
    return min(max(epoch / target_epoch, 0.0), 1.0)


def polynomial(initial: float, target: float, epoch: float, target_epoch: float, power: float = 0.9, concave: bool = True) -> float:
    """Polynomial schedule from ``initial`` to ``target``, reached at ``target_epoch``.

    With ``p`` the elapsed fraction: concave gives ``target - (target - initial) (1 - p)^power`` (fast
    start), convex ``initial + (target - initial) p^power`` (slow start).
    """
    p = progress(epoch, target_epoch)
    if concave:
        return target - (target - initial) * (1.0 - p) ** power
    return initial + (target - initial) * p**power


def exponential_decay(initial: float, target: float, epoch: float, target_epoch: float) -> float:
    """Geometric interpolation ``initial * (target / initial)^p`` (``p`` the elapsed fraction).

    Meant for *kept fractions* (densities): applied to ``1 - level`` it removes the same share of the
    remaining weights every epoch. A zero ``target`` is approached as a limit (it is reached at
    ``target_epoch`` exactly); a zero ``initial`` stays zero.
    """
    p = progress(epoch, target_epoch)
    if p >= 1.0:
        return target
    if initial <= 0.0:
        return 0.0
    if target <= 0.0:
        return initial * (1.0 - p)  # the geometric curve has no finite form towards zero; go linearly
    return initial * math.exp(p * math.log(target / initial))


def exponential_level(initial_level: float, target_level: float, epoch: float, target_epoch: float) -> float:
    """A level whose kept fraction ``1 - level`` decays exponentially from ``1 - initial_level`` to ``1 - target_level``."""
    return 1.0 - exponential_decay(1.0 - initial_level, 1.0 - target_level, epoch, target_epoch)


def multistep(steps: Sequence[float], values: Sequence[float], epoch: float) -> float:
    """``values[i]`` where ``i`` is the number of ``steps`` (increasing) that ``epoch`` has reached.

    ``values`` has one more entry than ``steps``: ``values[0]`` applies before the first step.
    """
    if len(values) != len(steps) + 1:
        raise ValueError(f"multistep needs one more value than steps; got {len(steps)} steps and {len(values)} values")
    return float(values[bisect.bisect_right(list(steps), epoch)])
