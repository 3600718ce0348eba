"""The loops' part of the run state, typed: how far the current level has got, and what the search knows.

A resumed run must continue exactly where the killed one stopped, so everything the loops decide from
lives here and is saved in ``state.json`` (under ``"loop"``) with every epoch and probe. It used to be a
bare dict mutated in place; as dataclasses the loop's code names its fields, and :meth:`LoopState.from_dict`
checks a saved state field by field, so a damaged file is reported as such instead of failing with a
``KeyError`` deep inside the loop. The JSON keys are those of state version 1, so a run interrupted by an
earlier release still resumes (its initial phase kept its epoch count in ``level``, and a level saved
``done``, which ``ended`` implies; both are read back).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aac.core.training.search import LevelOutcome


class LoopStateError(ValueError):
    """A saved loop state that cannot be read; the message says which field and why."""


@dataclass
class LevelProgress:
    """One search level while it is trained: its real rate, its epochs and validations so far, why it ended."""

    ticks: int
    epochs: int = 0
    #: the best validated budget so far (the start probe's when that already met the budget)
    best_budget: float | None = None
    feasible: bool = False
    #: ``[epoch within the level, budget]`` of every validation
    budgets: list[list[float]] = field(default_factory=list)
    #: the budget of the probe taken when the level started (None without early rejection)
    start_budget: float | None = None
    ended: str = ""

    @property
    def done(self) -> bool:
        """The level has ended (``ended`` says why)."""
        return bool(self.ended)

    def validated(self, budget: float) -> None:
        """Record the validation of the epoch just trained."""
        self.budgets.append([self.epochs, budget])
        self.best_budget = budget if self.best_budget is None else max(self.best_budget, budget)

    def outcome(self) -> LevelOutcome:
        best = self.best_budget if self.best_budget is not None else float("-inf")
        return LevelOutcome(self.ticks, self.feasible, best, self.epochs, self.ended, self.start_budget)


@dataclass
class LoopState:
    """What a loop knows between epochs (the early-exit loop uses only ``stop_reason``)."""

    stop_reason: str = ""
    #: epochs trained in the adaptive loop's initial phase
    initial_epochs: int = 0
    #: the level being trained; None between levels
    level: LevelProgress | None = None
    #: the last finished level's outcome while no level is being trained (the initial phase's, at first)
    outcome: LevelOutcome | None = None
    #: the search strategy's own state (:meth:`~aac.core.training.search.SearchStrategy.get_state`)
    strategy: dict[str, Any] = field(default_factory=dict)
    #: real ticks -> outcome of every level trained (and of rates the initial phase met)
    trained: dict[str, LevelOutcome] = field(default_factory=dict)
    #: ``"<ticks>@<weights id>"`` -> the probe's budget, so a decision repeated after a crash reads its probes back
    probes: dict[str, float] = field(default_factory=dict)
    #: the real ticks of the last level begun
    previous: int | None = None
    #: ``budgets`` of every level that met the budget after more than one epoch (early rejection compares with them)
    recoveries: list[list[list[float]]] = field(default_factory=list)

    def add_stop_reason(self, reason: str) -> None:
        self.stop_reason = f"{self.stop_reason}; {reason}" if self.stop_reason else reason

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LoopState:
        """Read a saved state; :class:`LoopStateError` names the first field that does not fit."""
        data = dict(raw)
        level = data.get("level")
        if isinstance(level, Mapping) and "ticks" not in level:  # version 1: the initial phase counted its epochs here
            data["initial_epochs"], data["level"] = level.get("epochs", 0), None
        elif isinstance(level, Mapping) and "done" in level:  # version 1 also saved `done`, which `ended` implies
            data["level"] = {k: v for k, v in level.items() if k != "done"}
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise LoopStateError(f"unknown key '{unknown[0]}'")
        try:
            state = cls(
                stop_reason=_typed(data, "stop_reason", str, ""),
                initial_epochs=_typed(data, "initial_epochs", int, 0),
                level=_record(LevelProgress, data["level"], "level") if data.get("level") is not None else None,
                outcome=_record(LevelOutcome, data["outcome"], "outcome") if data.get("outcome") is not None else None,
                strategy=_typed(data, "strategy", dict, {}),
                trained={str(k): _record(LevelOutcome, v, f"trained.{k}") for k, v in _typed(data, "trained", dict, {}).items()},
                probes={str(k): _number(v, f"probes.{k}") for k, v in _typed(data, "probes", dict, {}).items()},
                previous=_typed(data, "previous", int, None),
                recoveries=_typed(data, "recoveries", list, []),
            )
        except LoopStateError:
            raise
        except (TypeError, ValueError) as error:  # a record with missing or extra fields
            raise LoopStateError(str(error)) from None
        return state


def _typed(data: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    if value is not None and value is not default and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise LoopStateError(f"'{key}' is {type(value).__name__}, not {kind.__name__}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LoopStateError(f"'{where}' is {type(value).__name__}, not a number")
    return float(value)


def _record(kind: Any, value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        raise LoopStateError(f"'{where}' is {type(value).__name__}, not an object")
    names = {f.name for f in dataclasses.fields(kind)}
    extra, missing = sorted(set(value) - names), [f.name for f in dataclasses.fields(kind) if _required(f) and f.name not in value]
    if extra or missing:
        raise LoopStateError(f"'{where}' has " + ", ".join([*(f"unknown field '{k}'" for k in extra), *(f"no '{k}'" for k in missing)]))
    return kind(**value)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
