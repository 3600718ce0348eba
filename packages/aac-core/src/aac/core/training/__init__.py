"""The accuracy-aware training loops, their runner, search strategies and reporting.

The names below are loaded on first use. The loops sit at the top of aac-core (they load configs and
ask the plugin registry for search strategies), while the reporters, records and search strategies sit
below the plugin registry (core's built-in plugins return them); importing one of those modules must
not import the loops, or the registry would import itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aac.core.training.loops import (
        AdaptiveCompressionTrainingLoop,
        BaseAccuracyAwareTrainingLoop,
        EarlyExitCompressionTrainingLoop,
        adaptive_controller_of,
        create_accuracy_aware_training_loop,
    )
    from aac.core.training.observers import LoopObserver, RunContext
    from aac.core.training.records import EpochRecord, TrainingLoopStatistics
    from aac.core.training.search import FrontierSearch, LevelOutcome, LevelSpace, SearchBounds, SearchStrategy, StepSearch

_EXPORTS = {
    "AdaptiveCompressionTrainingLoop": "aac.core.training.loops",
    "BaseAccuracyAwareTrainingLoop": "aac.core.training.loops",
    "EarlyExitCompressionTrainingLoop": "aac.core.training.loops",
    "adaptive_controller_of": "aac.core.training.loops",
    "create_accuracy_aware_training_loop": "aac.core.training.loops",
    "LoopObserver": "aac.core.training.observers",
    "RunContext": "aac.core.training.observers",
    "EpochRecord": "aac.core.training.records",
    "TrainingLoopStatistics": "aac.core.training.records",
    "FrontierSearch": "aac.core.training.search",
    "LevelOutcome": "aac.core.training.search",
    "LevelSpace": "aac.core.training.search",
    "SearchBounds": "aac.core.training.search",
    "SearchStrategy": "aac.core.training.search",
    "StepSearch": "aac.core.training.search",
}

__all__ = [
    "AdaptiveCompressionTrainingLoop",
    "BaseAccuracyAwareTrainingLoop",
    "EarlyExitCompressionTrainingLoop",
    "EpochRecord",
    "FrontierSearch",
    "LevelOutcome",
    "LevelSpace",
    "LoopObserver",
    "RunContext",
    "SearchBounds",
    "SearchStrategy",
    "StepSearch",
    "TrainingLoopStatistics",
    "adaptive_controller_of",
    "create_accuracy_aware_training_loop",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aac.core.training' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
