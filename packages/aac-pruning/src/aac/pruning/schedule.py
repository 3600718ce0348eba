"""Pruning-level schedules (``params.schedule``) and the scheduler that applies them each epoch.

A schedule maps "epochs since pruning started" to a level; the scheduler adds the warm-up
(``num_init_steps`` epochs at level 0), applies the level through a callback at every
``epoch_step`` (recomputing masks from the current weights) and freezes the masks once
``num_init_steps + pruning_steps`` epochs have passed. Pure NumPy: every backend shares it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aac.core.api import CompressionScheduler

#: the exponential-with-bias curve reaches 3/4 of the target after this fraction of the schedule
BIAS_CURVE_POINT = 1.0 / 8.0


class Schedule(Protocol):
    def level(self, step: int) -> float:
        """The pruning level ``step`` epochs after pruning started (``step >= 0``)."""


@dataclass(frozen=True)
class BaselineSchedule:
    """The target at once (the scheduler freezes right after the first pruned epoch)."""

    target: float

    def level(self, step: int) -> float:
        return self.target


@dataclass(frozen=True)
class ExponentialSchedule:
    """The kept fraction decays exponentially from ``1 - initial`` to ``1 - target`` over ``steps - 1`` epochs."""

    initial: float
    target: float
    steps: int

    def level(self, step: int) -> float:
        span = self.steps - 1
        if span <= 0 or self.initial >= self.target:
            return self.target
        kept = (1.0 - self.initial) * ((1.0 - self.target) / (1.0 - self.initial)) ** (step / span)
        return min(1.0 - kept, self.target)


@dataclass(frozen=True)
class ExponentialWithBiasSchedule:
    """``a * exp(-k * x) + b`` over ``x = step / (steps - 1)``: starts at ``initial``, ends at ``target``
    and reaches ``0.75 * target`` after 1/8 of the schedule - fast early pruning that then settles.

    NNCF solves the three conditions with ``scipy.optimize.fsolve``; here they reduce to one
    monotone equation in ``k`` that bisection solves exactly (see :func:`_bias_curve_rate`). When
    ``initial`` is already above ``0.75 * target`` no such curve exists and the schedule is linear.
    """

    initial: float
    target: float
    steps: int

    def level(self, step: int) -> float:
        span = self.steps - 1
        if span <= 0 or self.initial >= self.target:
            return self.target
        x = step / span
        k = _bias_curve_rate(self.initial, self.target)
        if k == 0.0:
            value = self.initial + (self.target - self.initial) * x
        else:
            a = (self.target - self.initial) / math.expm1(-k)
            value = a * math.exp(-k * x) + (self.initial - a)
        return min(value, self.target)


def _bias_curve_rate(initial: float, target: float) -> float:
    """The ``k`` of the exponential-with-bias curve.

    With ``f(0) = initial`` and ``f(1) = target``, the condition ``f(D) = 0.75 * target`` becomes
    ``expm1(-k D) / expm1(-k) = (0.75 target - initial) / (target - initial)``. The left side grows
    monotonically from 0 (k -> -inf) through D (k = 0, a straight line) to 1 (k -> +inf), so bisection
    finds the unique root. A right side <= 0 has no root: the line (k = 0) is used.
    """
    ratio = (0.75 * target - initial) / (target - initial)
    if ratio <= 0.0 or math.isclose(ratio, BIAS_CURVE_POINT):
        return 0.0

    def shape(k: float) -> float:
        return BIAS_CURVE_POINT if k == 0.0 else math.expm1(-k * BIAS_CURVE_POINT) / math.expm1(-k)

    low, high = -60.0, 60.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if shape(middle) < ratio:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


SCHEDULES: dict[str, Callable[[float, float, int], Schedule]] = {
    "baseline": lambda initial, target, steps: BaselineSchedule(target),
    "exponential": ExponentialSchedule,
    "exponential_with_bias": ExponentialWithBiasSchedule,
}


class PruningScheduler(CompressionScheduler):
    """Applies a :class:`Schedule` at each ``epoch_step`` and freezes the masks when it is done.

    :param apply: called with the new level; the algorithm recomputes its masks from the current weights.
    :param freeze_immediately: freeze after the first pruned epoch (the ``baseline`` schedule).
    """

    def __init__(
        self,
        schedule: Schedule,
        num_init_steps: int,
        pruning_steps: int,
        apply: Callable[[float], None],
        freeze_immediately: bool = False,
    ) -> None:
        super().__init__()
        self.schedule = schedule
        self.num_init_steps = num_init_steps
        self.pruning_steps = pruning_steps
        self._apply = apply
        self._freeze_at = num_init_steps + (0 if freeze_immediately else pruning_steps)
        self.frozen = False

    def level_at(self, epoch: int) -> float:
        return 0.0 if epoch < self.num_init_steps else self.schedule.level(epoch - self.num_init_steps)

    @property
    def current_level(self) -> float:
        return self.level_at(max(self.current_epoch, 0))

    def _on_epoch(self) -> None:
        if self.frozen:
            return
        self._apply(self.current_level)
        if self.current_epoch >= self._freeze_at:
            self.frozen = True

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "frozen": self.frozen}

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self.frozen = bool(state.get("frozen", False))
