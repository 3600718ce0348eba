"""The ``knowledge_distillation`` config section as a typed object, with NNCF's defaults.

The JSON Schema (``schemas/knowledge_distillation.schema.json``) has checked types when this runs;
what is left is the rule that relates two keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aac.core.errors import ConfigError, ConfigProblem

#: the loss kinds: the mean squared error of the outputs, or the cross-entropy of their softmaxes
TYPES = ("mse", "softmax")


@dataclass(frozen=True)
class DistillationSettings:
    """``type`` (required), ``scale`` (the loss's weight) and ``temperature`` (softmax only)."""

    type: Literal["mse", "softmax"]
    scale: float = 1.0
    temperature: float = 1.0

    @classmethod
    def from_section(cls, raw: Mapping[str, Any], path: str = "$.compression") -> DistillationSettings:
        problems = check_section(raw, path)
        if problems:
            raise ConfigError(problems)
        return cls(raw["type"], float(raw.get("scale", 1.0)), float(raw.get("temperature", 1.0)))


def check_section(raw: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    """NNCF refuses a temperature for the MSE loss, which has none (``AlgorithmSpec.check``: ``aac validate`` reports it)."""
    if raw.get("type") == "mse" and "temperature" in raw:
        return [
            ConfigProblem(
                f"{path}.temperature", "temperature softens the softmax loss; type 'mse' has none: remove it or use type 'softmax'"
            )
        ]
    return []
