"""The accuracy-aware training loops, their runner, search strategies and reporting."""

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
