"""Compression-rate search strategies for the adaptive loop.

Rates live on an exact integer grid (:data:`GRID` ticks per unit), so repeated additions never drift
(NNCF's keys looked like 0.7199818494149677) and two different rates can never share a checkpoint
name. A strategy sees the outcome of every trained level and answers with the next rate, or with
``None`` and a reason to stop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aac.core.config.accuracy_aware import AccuracyAwareParams

#: grid ticks per unit of compression rate (rates are multiples of 1e-6)
GRID = 1_000_000


def to_ticks(rate: float) -> int:
    return round(rate * GRID)


def to_rate(ticks: int) -> float:
    return round(ticks / GRID, 6)


@dataclass(frozen=True)
class LevelOutcome:
    """What training at one rate showed: was the budget reached, and how close it came."""

    ticks: int
    feasible: bool
    best_budget: float
    epochs: int

    @property
    def rate(self) -> float:
        return to_rate(self.ticks)


@dataclass(frozen=True)
class SearchBounds:
    """The rates the search may try (config bounds, capped by the algorithm's own maximum)."""

    minimum: int
    maximum: int


class SearchStrategy(ABC):
    """Decides which compression rate to train next.

    The loop calls :meth:`start` once with the rate reached by the initial phase, then
    :meth:`next_rate` after each level with that level's outcome. Strategies must be resumable:
    :meth:`get_state`/:meth:`load_state` round-trip through JSON.
    """

    stop_reason: str = ""

    def __init__(self, params: AccuracyAwareParams) -> None:
        self.params = params

    @abstractmethod
    def start(self, initial: int, bounds: SearchBounds) -> None:
        """Begin at ``initial`` ticks (the rate the initial phase ended at)."""

    @abstractmethod
    def next_rate(self, outcome: LevelOutcome) -> int | None:
        """The next rate in ticks, or None to stop (then :attr:`stop_reason` says why)."""

    @property
    def step(self) -> float | None:
        """The current step as a rate, for reporting (None if the strategy has no step)."""
        return None

    @property
    def learning_rate_scale(self) -> float:
        """Cumulative factor applied to the learning rate when a level starts."""
        return 1.0

    @abstractmethod
    def get_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state(self, state: Mapping[str, Any]) -> None: ...


@dataclass
class _StepState:
    current: int = 0
    step: int = 0
    direction: int = 0
    lr_scale: float = 1.0
    minimum: int = 0
    maximum: int = 0
    stop_reason: str = ""


class StepSearch(SearchStrategy):
    """NNCF's search, with its defects fixed.

    Up by ``step`` after a level reaches the budget, down by ``step`` after ``patience_epochs``
    without; whenever the direction flips, the step (and the learning rate) is multiplied by its
    reduction factor. The search ends when the step would fall below
    ``minimal_compression_rate_step`` - without NNCF's extra probe at the sub-minimal step.
    Unlike NNCF, a target beyond a bound is clamped *and trained* before it can be returned, and
    the search ends at a bound only once that bound was tried.
    """

    def __init__(self, params: AccuracyAwareParams) -> None:
        super().__init__(params)
        self._s = _StepState()
        self._min_step = to_ticks(params.minimal_compression_rate_step)

    def start(self, initial: int, bounds: SearchBounds) -> None:
        self._s = _StepState(
            current=min(max(initial, bounds.minimum), bounds.maximum),
            step=to_ticks(self.params.initial_compression_rate_step),
            minimum=bounds.minimum,
            maximum=bounds.maximum,
        )

    @property
    def step(self) -> float:
        return to_rate(self._s.step)

    @property
    def learning_rate_scale(self) -> float:
        return self._s.lr_scale

    @property
    def stop_reason(self) -> str:  # type: ignore[override]
        return self._s.stop_reason

    def _stop(self, reason: str) -> None:
        self._s.stop_reason = reason

    def next_rate(self, outcome: LevelOutcome) -> int | None:
        s = self._s
        sign = 1 if outcome.feasible else -1
        if s.direction and sign != s.direction:
            s.step = round(s.step * self.params.compression_rate_step_reduction_factor)
            s.lr_scale *= self.params.lr_reduction_factor
        s.direction = sign
        if s.step < self._min_step or s.step == 0:
            self._stop(f"the step fell below minimal_compression_rate_step ({self.params.minimal_compression_rate_step:g})")
            return None
        if outcome.feasible and outcome.ticks >= s.maximum:
            self._stop(f"the maximal compression rate {to_rate(s.maximum):g} is within budget")
            return None
        if not outcome.feasible and outcome.ticks <= s.minimum:
            self._stop(f"even the minimal compression rate {to_rate(s.minimum):g} exceeds the budget")
            return None
        s.current = min(max(outcome.ticks + sign * s.step, s.minimum), s.maximum)
        return s.current

    def get_state(self) -> dict[str, Any]:
        return asdict(self._s)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._s = _StepState(**state)
