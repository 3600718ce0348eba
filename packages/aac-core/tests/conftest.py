"""Shared fixtures: a pure-Python model and a toy adaptive algorithm, registered as a real plugin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from aac.core import (
    AlgorithmSpec,
    AlgorithmStatistics,
    CompressionAlgorithm,
    CompressionScheduler,
    CompressionStage,
    Registry,
    get_plugin_manager,
    hookimpl,
)


class ToyModel:
    """A 'network' whose skill grows with training; compression above a knee costs accuracy."""

    def __init__(self, skill: float = 0.9) -> None:
        self.skill = skill
        self.rate = 0.0  # set by the toy algorithm, like a mask buffer

    def state_dict(self) -> dict[str, float]:
        return {"skill": self.skill, "rate": self.rate}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.skill, self.rate = float(state["skill"]), float(state["rate"])


class ToySchedule(CompressionScheduler):
    def __init__(self, algo: ToyPruning, target: float, steps: int) -> None:
        super().__init__()
        self.algo, self.target, self.steps = algo, target, steps

    def _on_epoch(self) -> None:
        self.algo.set_rate(self.target * min(1.0, (self.current_epoch + 1) / self.steps))


class ToyPruning(CompressionAlgorithm):
    """Adaptive toy algorithm for the ``python`` framework."""

    name = "toy_pruning"
    adaptive = True

    def __init__(self, model: ToyModel, params: Mapping[str, Any]) -> None:
        super().__init__(model, params)
        self.target = float(params.get("target", 0.3))
        self.max_rate = float(params.get("max_rate", 1.0))
        self._scheduler = ToySchedule(self, self.target, int(params.get("steps", 2)))

    def set_rate(self, value: float) -> None:
        self.model.rate = float(value)

    @property
    def compression_rate(self) -> float:
        return self.model.rate

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self.set_rate(value)

    @property
    def maximal_compression_rate(self) -> float:
        return self.max_rate

    def compression_stage(self) -> CompressionStage:
        if self.scheduler_disabled or self.model.rate >= self.target - 1e-9:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED if self.model.rate > 0 else CompressionStage.UNCOMPRESSED

    def _collect_statistics(self) -> AlgorithmStatistics:
        return AlgorithmStatistics(self.name, {"rate": self.model.rate})

    def _get_algorithm_state(self) -> dict[str, Any]:
        return {"rate": self.model.rate}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        self.model.rate = float(state["rate"])


def build_toy(model: Any, section: Any, config: Any) -> ToyPruning:
    return ToyPruning(model, section.params)


class ToyPlugin:
    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        return [AlgorithmSpec(
            name="toy_pruning", adaptive=True, frameworks={"python": build_toy}, package="aac-core-tests",
            schema={"$id": "urn:test:toy", "type": "object", "properties": {
                "params": {"type": "object", "properties": {
                    "target": {"type": "number"}, "steps": {"type": "integer"}, "max_rate": {"type": "number"}},
                    "additionalProperties": False}}, "additionalProperties": False},
        ), AlgorithmSpec(name="toy_quant", adaptive=False, frameworks={"python": "conftest:ToyQuant"},
                         schema={"type": "object"}, package="aac-core-tests")]


@pytest.fixture
def registry() -> Registry:
    return Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin()]))


def accuracy(model: ToyModel, knee: float = 0.5, slope: float = 1.0) -> float:
    """Deterministic 'validation': skill minus a penalty for compressing past the knee."""
    return round(min(model.skill, 1.0) - max(0.0, model.rate - knee) * slope, 6)


def train_epoch(model: ToyModel, gain: float = 0.01) -> None:
    model.skill = round(min(1.0, model.skill + gain), 6)
