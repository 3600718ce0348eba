"""Compression-rate search strategies for the adaptive loop.

Rates live on an exact integer grid (:data:`GRID` ticks per unit), so repeated additions never drift
(NNCF's keys looked like 0.7199818494149677) and two different rates can never share a checkpoint
name. A strategy sees the outcome of every trained level and answers with the next rate, or with
``None`` and a reason to stop.

**Real levels.** A controller cannot reach every rate: filter pruning keeps whole blocks of
``filters_multiple_of`` filters, so a request of 0.70 may become 0.75. The loop hands every strategy
a :class:`LevelSpace` that answers which real rate a request becomes (:meth:`LevelSpace.reachable`),
and the loop itself never trains a real level twice: a request that lands on a level already trained
is answered at once with that level's recorded outcome, so the strategy reasons from what is known.

**Probes.** :meth:`LevelSpace.probe` measures a rate without training it: the loop sets the rate on
the current weights, re-estimates batch-norm statistics (when the controller was initialised with
data) and validates, then puts everything back. A probe costs a validation pass and a little
batch-norm adaptation - a fraction of an epoch - and the loop records it in the history as a probe,
not as a trained level.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aac.core.config.accuracy_aware import AccuracyAwareParams

#: grid ticks per unit of compression rate (rates are multiples of 1e-6)
GRID = 1_000_000


def to_ticks(rate: float) -> int:
    return round(rate * GRID)


def to_rate(ticks: int) -> float:
    return round(ticks / GRID, 6)


#: why a level ended, as recorded in its outcome and in the history
LEVEL_FEASIBLE = "feasible"
LEVEL_PROBED = "feasible at its start probe"
LEVEL_PATIENCE = "patience"
LEVEL_REJECTED = "rejected"
LEVEL_EARLY_STOPPING = "early_stopping_fn"
LEVEL_EPOCH_CAP = "maximal_total_epochs"


@dataclass(frozen=True)
class LevelOutcome:
    """What training at one real rate showed: was the budget reached, how close it came, and why it ended.

    ``start_budget`` is the budget of the probe taken when the level started (None without one).
    """

    ticks: int
    feasible: bool
    best_budget: float
    epochs: int
    ended: str = ""
    start_budget: float | None = None

    @property
    def rate(self) -> float:
        return to_rate(self.ticks)


@dataclass(frozen=True)
class SearchBounds:
    """The rates the search may try (config bounds, capped by the algorithm's own maximum)."""

    minimum: int
    maximum: int


class LevelSpace:
    """The real levels of the adaptive controller, and probes of them - what a strategy may ask the loop.

    :param reachable: requested ticks -> the ticks the controller really reaches.
    :param probe: real ticks -> the budget of the current weights at that rate, untrained (memoised by the loop).
    """

    def __init__(self, reachable: Callable[[int], int], probe: Callable[[int], float]) -> None:
        self._reachable = reachable
        self._probe = probe

    def reachable(self, ticks: int) -> int:
        return self._reachable(ticks)

    def probe(self, ticks: int) -> float:
        return self._probe(ticks)

    def grid(self, low: int, high: int, resolution: int) -> list[int]:
        """The distinct real levels strictly between ``low`` and ``high``, requested every ``resolution`` ticks."""
        requests = [*range(low + resolution, high, max(resolution, 1)), high - 1]  # and the top, whatever the resolution
        return sorted({real for real in map(self.reachable, requests) if low < real < high})


class SearchStrategy(ABC):
    """Decides which compression rate to train next.

    The loop sets :attr:`levels` and calls :meth:`start` once with the real rate reached by the
    initial phase, then :meth:`next_rate` after each level with that level's outcome. Strategies must
    be resumable: :meth:`get_state`/:meth:`load_state` round-trip through JSON, and a decision must
    depend only on that state, the outcomes and the probes (the loop replays probes from its record
    when a decision is repeated after a crash).
    """

    stop_reason: str = ""
    #: set by the loop before :meth:`start` or :meth:`load_state`
    levels: LevelSpace

    def __init__(self, params: AccuracyAwareParams) -> None:
        self.params = params
        self.levels = LevelSpace(lambda ticks: ticks, lambda ticks: math.nan)

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
        s.current = self._next_real_level(outcome.ticks, sign * s.step)
        return s.current

    def _next_real_level(self, ticks: int, step: int) -> int:
        """``ticks + step``, or further in steps of ``step`` until the controller reaches another real level.

        On a coarse grid (filter pruning keeps blocks of filters) a small step rounds back onto the
        level it started from; NNCF then trained that level again.
        """
        target = ticks
        while True:
            target = min(max(target + step, self._s.minimum), self._s.maximum)
            if self.levels.reachable(target) != ticks or target in (self._s.minimum, self._s.maximum):
                return target

    def get_state(self) -> dict[str, Any]:
        return asdict(self._s)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._s = _StepState(**state)


@dataclass
class _FrontierState:
    minimum: int = 0
    maximum: int = 0
    #: real ticks -> [feasible, start deficit or None] of every level trained (the initial phase's end included)
    trained: dict[str, list[Any]] = field(default_factory=dict)
    stop_reason: str = ""


class FrontierSearch(SearchStrategy):
    """The default search: probe-guided climbing on the controller's real levels.

    The frontier lies between the highest level that met the budget (*F*) and the lowest level above
    it that did not (*I*). Each decision looks only at the real levels strictly between them:

    1. **Probe** them (cheap, untrained) by bisection - probe budgets fall with the rate - to find the
       highest level whose *deficit* (how far its probe is below the tolerable metric) training is
       expected to recover.
    2. **How much training recovers** is learnt from this run: every trained level started with a
       probe, so its start deficit and whether it met the budget bracket the recoverable deficit
       (largest recovered, smallest not recovered). The target is the middle of that bracket; with no
       failure yet it is :data:`GROWTH` times the largest recovered deficit; with nothing known it is
       half the deficit of the highest level (the middle of the probes' range).
    3. **Train** that level. Climbing from the current weights in recoverable jumps costs about one
       epoch per level, because a level ends at its first validation within budget.

    It stops when no real level is left between *F* and *I* (the frontier is found to the
    controller's resolution), when *F* is the maximal rate, or when even the lowest level above *F*
    is predicted hopeless: its deficit is at least :data:`HOPELESS_FACTOR` times one that training
    already failed to recover. If nothing met the budget, it searches downwards the same way.
    Levels closer than ``minimal_compression_rate_step`` to a known one are not considered.
    """

    #: a deficit this many times one that training failed to recover is not worth an epoch
    HOPELESS_FACTOR = 1.5
    #: with no failure yet, the next target is this many times the largest deficit recovered so far
    GROWTH = 1.5

    def __init__(self, params: AccuracyAwareParams) -> None:
        super().__init__(params)
        self._s = _FrontierState()
        self._resolution = max(to_ticks(params.minimal_compression_rate_step), 1)

    def start(self, initial: int, bounds: SearchBounds) -> None:
        self._s = _FrontierState(minimum=bounds.minimum, maximum=bounds.maximum)

    @property
    def stop_reason(self) -> str:  # type: ignore[override]
        return self._s.stop_reason

    def _stop(self, reason: str) -> None:
        self._s.stop_reason = reason

    # -- what is known ---------------------------------------------------------------------
    def _outcomes(self) -> list[tuple[int, bool, float | None]]:
        return [(int(t), bool(v[0]), v[1]) for t, v in self._s.trained.items()]

    def _bracket(self) -> tuple[int | None, int | None]:
        """(highest feasible level, lowest infeasible level above it)."""
        known = self._outcomes()
        feasible = [t for t, ok, _ in known if ok]
        high = max(feasible) if feasible else None
        above = [t for t, ok, _ in known if not ok and (high is None or t > high)]
        return high, (min(above) if above else None)

    def _recoverable(self) -> tuple[float | None, float | None]:
        """(largest start deficit that training recovered, smallest it did not)."""
        known = [(ok, d) for _, ok, d in self._outcomes() if d is not None]
        recovered = [d for ok, d in known if ok and d > 0]  # a level that started within budget recovered nothing
        failed = [d for ok, d in known if not ok]
        return (max(recovered) if recovered else None), (min(failed) if failed else None)

    def _target(self) -> float | None:
        """The probe deficit the next level may start from; None while nothing was learnt."""
        recovered, failed = self._recoverable()
        if recovered is not None and failed is not None:
            return (recovered + failed) / 2.0 if recovered < failed else failed / 2.0
        if recovered is not None:
            return self.GROWTH * recovered
        if failed is not None:
            return failed / 2.0
        return None

    # -- deciding --------------------------------------------------------------------------
    def next_rate(self, outcome: LevelOutcome) -> int | None:
        start_deficit = None if outcome.start_budget is None or math.isnan(outcome.start_budget) else max(0.0, -outcome.start_budget)
        self._s.trained[str(outcome.ticks)] = [outcome.feasible, start_deficit]
        feasible, infeasible = self._bracket()
        if feasible is None:
            return self._downwards(infeasible)
        if feasible >= self._s.maximum:
            self._stop(f"the maximal compression rate {to_rate(self._s.maximum):g} is within budget")
            return None
        high = infeasible if infeasible is not None else self._s.maximum + 1
        candidates = self._candidates(feasible, high)
        if not candidates:
            self._stop(
                f"the frontier is found: {to_rate(feasible):g} is within budget"
                + (
                    f" and the next reachable rate {to_rate(infeasible):g} is not"
                    if infeasible is not None
                    else f" and no reachable rate lies between it and the maximum {to_rate(self._s.maximum):g}"
                )
            )
            return None
        return self._choose(candidates)

    def _candidates(self, low: int, high: int) -> list[int]:
        """Real levels between ``low`` and ``high``, at least one resolution away from every trained level."""
        trained = [int(t) for t in self._s.trained]
        return [c for c in self.levels.grid(low, high, self._resolution) if all(abs(c - t) >= self._resolution for t in trained)]

    def _deficit(self, ticks: int) -> float:
        budget = self.levels.probe(ticks)
        return math.inf if math.isnan(budget) else max(0.0, -budget)

    def _choose(self, candidates: list[int], *, may_stop: bool = True) -> int | None:
        """The highest candidate whose probe deficit is within the target, found by bisection over probes."""
        target = self._target()
        if target is None:  # nothing learnt yet: aim at the middle of the probes' range
            top = self._deficit(candidates[-1])
            if top == 0.0:
                return candidates[-1]
            target = top / 2.0 if math.isfinite(top) else 0.0
        low, high = -1, len(candidates)  # candidates[low] is within the target, candidates[high] beyond it
        while high - low > 1:
            middle = (low + high) // 2
            if self._deficit(candidates[middle]) <= target:
                low = middle
            else:
                high = middle
        if low >= 0:
            return candidates[low]
        lowest = self._deficit(candidates[0])
        _, failed = self._recoverable()
        if may_stop and failed is not None and lowest >= self.HOPELESS_FACTOR * failed:
            self._stop(
                f"the next reachable rate {to_rate(candidates[0]):g} is predicted hopeless: its probe is "
                f"{lowest:.4g} below the tolerable metric, and training did not recover {failed:.4g}"
            )
            return None
        return candidates[0]

    def _downwards(self, infeasible: int | None) -> int | None:
        """Nothing met the budget yet: bisect below the lowest infeasible level towards the minimum."""
        ceiling = infeasible if infeasible is not None else self._s.maximum + 1
        if ceiling <= self._s.minimum:
            self._stop(f"even the minimal compression rate {to_rate(self._s.minimum):g} exceeds the budget")
            return None
        candidates = self._candidates(self._s.minimum - 1, ceiling)
        if not candidates:
            self._stop(f"no reachable rate below {to_rate(ceiling):g} is left to try")
            return None
        return self._choose(candidates, may_stop=False)

    def get_state(self) -> dict[str, Any]:
        return asdict(self._s)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._s = _FrontierState(**state)
