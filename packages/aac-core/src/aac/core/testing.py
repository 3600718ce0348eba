"""Toys for testing the loops and plugins without a framework: a pure-Python model and two algorithms.

Plugin authors can use them too: ``Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin()]))``
gives a registry with ``toy_pruning`` (adaptive) and ``toy_quant`` (fixed-level) for the ``python``
framework, which core's generic backend runs end to end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aac.core.api import CompressionAlgorithm, CompressionScheduler, CompressionStage
from aac.core.hookspecs import hookimpl
from aac.core.specs import AlgorithmSpec
from aac.core.statistics import AlgorithmStatistics


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
    """Adaptive toy algorithm for the ``python`` framework.

    With ``grid`` > 0 it reaches only multiples of ``grid`` (a request is rounded to the nearest one),
    like filter pruning, which keeps whole blocks of filters.
    """

    name = "toy_pruning"
    adaptive = True

    def __init__(self, model: ToyModel, params: Mapping[str, Any]) -> None:
        super().__init__(model, params)
        self.target = float(params.get("target", 0.3))
        self.max_rate = float(params.get("max_rate", 1.0))
        self.grid = float(params.get("grid", 0.0))
        self._scheduler = ToySchedule(self, self.target, int(params.get("steps", 2)))

    def set_rate(self, value: float) -> None:
        self.model.rate = self._on_grid(value)

    def reachable_compression_rate(self, rate: float) -> float:
        return self._on_grid(rate)

    def _on_grid(self, rate: float) -> float:
        return round(round(rate / self.grid) * self.grid, 6) if self.grid else float(rate)

    @property
    def compression_rate(self) -> float:
        return float(self.model.rate)

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


class ToyQuant(CompressionAlgorithm):
    """A fixed-level toy algorithm (like quantization: no adjustable rate) that counts its epochs."""

    name = "toy_quant"

    def __init__(self, model: ToyModel) -> None:
        super().__init__(model)
        self._scheduler = CompressionScheduler()

    def _collect_statistics(self) -> AlgorithmStatistics:
        return AlgorithmStatistics(self.name, {"epochs_seen": float(self._scheduler.current_epoch + 1)})


def build_toy_quant(model: Any, section: Any, config: Any) -> ToyQuant:
    return ToyQuant(model)


class ToyPlugin:
    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        return [
            AlgorithmSpec(
                name="toy_pruning",
                adaptive=True,
                frameworks={"python": build_toy},
                package="aac-core",
                schema={
                    "$id": "urn:test:toy",
                    "type": "object",
                    "properties": {
                        "params": {
                            "type": "object",
                            "properties": {
                                "target": {"type": "number"},
                                "steps": {"type": "integer"},
                                "max_rate": {"type": "number"},
                                "grid": {"type": "number"},
                            },
                            "additionalProperties": False,
                        }
                    },
                    "additionalProperties": False,
                },
            ),
            AlgorithmSpec(
                name="toy_quant", adaptive=False, frameworks={"python": build_toy_quant}, schema={"type": "object"}, package="aac-core"
            ),
        ]


def accuracy(model: ToyModel, knee: float = 0.5, slope: float = 1.0) -> float:
    """Deterministic 'validation': skill minus a penalty for compressing past the knee."""
    return round(min(model.skill, 1.0) - max(0.0, model.rate - knee) * slope, 6)


def train_epoch(model: ToyModel, gain: float = 0.01) -> None:
    model.skill = round(min(1.0, model.skill + gain), 6)
