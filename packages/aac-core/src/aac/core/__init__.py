"""aac-core: accuracy-aware compression without a framework.

The names here are the public API that users and plugins code against::

    from aac.core import load_config, create_compressed_model, create_accuracy_aware_training_loop

    config = load_config("pruning.json")
    controller, model = create_compressed_model(model, config)
    loop = create_accuracy_aware_training_loop(config, controller, uncompressed_model_accuracy=98.0)
    model = loop.run(model, train_epoch_fn=..., validate_fn=..., configure_optimizers_fn=...)
    loop.statistics.compression_rate, loop.statistics.compressed_accuracy  # the console shows the full table

What the loop expects of the callbacks (who steps which scheduler, what they return, the metric's
scale): docs/accuracy-aware-training.md, "The callback contract".
"""

from aac.core._version import __version__
from aac.core.api import (
    CompressionAlgorithm,
    CompressionController,
    CompressionLoss,
    CompressionScheduler,
    CompressionStage,
    StubCompressionScheduler,
)
from aac.core.backend import Backend, GenericBackend
from aac.core.composite import CompositeController
from aac.core.config import AccuracyAwareParams, AlgorithmCatalog, AlgorithmSection, Config, load_config
from aac.core.errors import (
    AacError,
    CallbackError,
    CheckpointError,
    ConfigError,
    ConfigProblem,
    MetricScaleError,
    MissingBackendError,
    PluginError,
    UnknownAlgorithmError,
)
from aac.core.hookspecs import hookimpl
from aac.core.model_creation import create_compressed_model
from aac.core.plugins import Registry, default_registry, get_plugin_manager
from aac.core.specs import AlgorithmSpec, BackendSpec, SearchStrategySpec
from aac.core.statistics import AlgorithmStatistics, CompressionStatistics, Table
from aac.core.training import (
    AdaptiveCompressionTrainingLoop,
    EarlyExitCompressionTrainingLoop,
    EpochRecord,
    LoopObserver,
    RunContext,
    SearchStrategy,
    TrainingLoopStatistics,
    create_accuracy_aware_training_loop,
)

__all__ = [
    "AacError",
    "AccuracyAwareParams",
    "AdaptiveCompressionTrainingLoop",
    "AlgorithmCatalog",
    "AlgorithmSection",
    "AlgorithmSpec",
    "AlgorithmStatistics",
    "Backend",
    "BackendSpec",
    "CallbackError",
    "MetricScaleError",
    "CheckpointError",
    "CompositeController",
    "CompressionAlgorithm",
    "CompressionController",
    "CompressionLoss",
    "CompressionScheduler",
    "CompressionStage",
    "CompressionStatistics",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "EarlyExitCompressionTrainingLoop",
    "EpochRecord",
    "GenericBackend",
    "LoopObserver",
    "MissingBackendError",
    "PluginError",
    "Registry",
    "RunContext",
    "SearchStrategy",
    "SearchStrategySpec",
    "StubCompressionScheduler",
    "Table",
    "TrainingLoopStatistics",
    "UnknownAlgorithmError",
    "__version__",
    "create_accuracy_aware_training_loop",
    "create_compressed_model",
    "default_registry",
    "get_plugin_manager",
    "hookimpl",
    "load_config",
]
