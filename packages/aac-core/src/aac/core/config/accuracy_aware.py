"""The ``accuracy_aware_training`` section as a typed object with the seeds' defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

EARLY_EXIT = "early_exit"
ADAPTIVE = "adaptive_compression_level"

#: keys that only the adaptive mode reads (early exit rejects them: they would be silently ignored)
ADAPTIVE_ONLY_KEYS = (
    "initial_training_phase_epochs",
    "patience_epochs",
    "minimal_compression_rate_step",
    "initial_compression_rate_step",
    "compression_rate_step_reduction_factor",
    "lr_reduction_factor",
    "minimal_compression_rate",
    "maximal_compression_rate",
    "search_strategy",
    "early_rejection",
    "warm_start",
)

#: where a new level of the search starts from (``warm_start``)
WARM_STARTS = ("current", "best_feasible", "directional")


@dataclass(frozen=True)
class AccuracyAwareParams:
    """Parameters of the accuracy-aware loops; defaults are those of the NNCF documentation."""

    mode: str = EARLY_EXIT
    maximal_relative_accuracy_degradation: float | None = None
    maximal_absolute_accuracy_degradation: float | None = None
    maximal_total_epochs: int = 10000
    validate_every_n_epochs: int = 1
    metric_mode: Literal["max", "min"] = "max"
    initial_training_phase_epochs: int = 5
    patience_epochs: int = 3
    minimal_compression_rate_step: float = 0.025
    initial_compression_rate_step: float = 0.1
    compression_rate_step_reduction_factor: float = 0.5
    lr_reduction_factor: float = 0.5
    minimal_compression_rate: float = 0.0
    maximal_compression_rate: float = 0.95
    search_strategy: str = "frontier"
    early_rejection: bool = True
    warm_start: str = "current"

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> AccuracyAwareParams:
        """Build from a *validated* ``accuracy_aware_training`` section."""
        params = dict(section.get("params", {}))
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {"mode": section["mode"]}
        for key, value in params.items():
            if key in known:
                values[key] = int(value) if known[key].type == "int" else value
        return cls(**values)

    @property
    def higher_is_better(self) -> bool:
        return self.metric_mode == "max"

    def minimal_tolerable_metric(self, uncompressed_metric: float) -> float:
        """The worst metric still within budget (for ``metric_mode: min``, the highest tolerable one)."""
        sign = 1.0 if self.higher_is_better else -1.0
        if self.maximal_absolute_accuracy_degradation is not None:
            return uncompressed_metric - sign * self.maximal_absolute_accuracy_degradation
        relative = 1.0 if self.maximal_relative_accuracy_degradation is None else self.maximal_relative_accuracy_degradation
        return uncompressed_metric - sign * abs(uncompressed_metric) * relative / 100.0

    def allowed_drop(self, uncompressed_metric: float) -> float:
        """How far the metric may move from ``uncompressed_metric`` (in the metric's units)."""
        return abs(uncompressed_metric - self.minimal_tolerable_metric(uncompressed_metric))

    def budget(self, metric: float, uncompressed_metric: float) -> float:
        """How far ``metric`` is inside the allowed drop; >= 0 means within budget."""
        slack = metric - self.minimal_tolerable_metric(uncompressed_metric)
        # rounded so that a metric exactly at the tolerable value is not lost to float noise
        return round(slack if self.higher_is_better else -slack, 10)

    def is_better(self, a: float, b: float) -> bool:
        """True if metric ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def allowed_drop_text(self) -> str:
        if self.maximal_absolute_accuracy_degradation is not None:
            return f"absolute drop <= {self.maximal_absolute_accuracy_degradation:g}"
        relative = 1.0 if self.maximal_relative_accuracy_degradation is None else self.maximal_relative_accuracy_degradation
        return f"relative drop <= {relative:g}%"
