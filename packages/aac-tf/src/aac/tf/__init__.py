"""TensorFlow/Keras 3 backend of aac.

Importing this package does not import TensorFlow: the names below are loaded on first use, so that
listing plugins or validating a config stays cheap. It does check that TensorFlow and a tested Keras
are installed (:mod:`aac.tf.requirements`): without TensorFlow the ``ImportError`` says what to
install. See ``packages/aac-tf/README.md`` for the API that algorithm packages build on, and
:func:`accuracy_aware_fit` for the Keras-native entry point.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aac.tf import requirements
from aac.tf._version import __version__

requirements.check()

if TYPE_CHECKING:
    from aac.tf.algorithm import TFCompressionAlgorithm, TFFramework
    from aac.tf.backend import TFBackend
    from aac.tf.batchnorm import adapt_batchnorm, input_batches
    from aac.tf.callbacks import CompressionCallback, CompressionStatisticsCallback, install_compression_loss, uninstall_compression_loss
    from aac.tf.export import ExportError, export_model
    from aac.tf.fit import accuracy_aware_fit
    from aac.tf.keras_graph import POINTWISE
    from aac.tf.keras_internals import current_call_context, own_variables
    from aac.tf.layers import InputSpec, ModelTraceError, iter_layers, model_style
    from aac.tf.models import TFModel, copy_model, origin, parameter_count, prepare_model, rebuildable_layers
    from aac.tf.scopes import ScopeIndex, ScopeSelection
    from aac.tf.summary import SummaryWriter
    from aac.tf.transforms import (
        Mask,
        TransformError,
        WeightTransform,
        add_transform,
        effective_value,
        fold_all,
        fold_transforms,
        has_transforms,
        iter_transforms,
        original,
        transforms_of,
    )

_EXPORTS = {
    "TFCompressionAlgorithm": "aac.tf.algorithm",
    "TFFramework": "aac.tf.algorithm",
    "TFBackend": "aac.tf.backend",
    "adapt_batchnorm": "aac.tf.batchnorm",
    "input_batches": "aac.tf.batchnorm",
    "CompressionCallback": "aac.tf.callbacks",
    "CompressionStatisticsCallback": "aac.tf.callbacks",
    "install_compression_loss": "aac.tf.callbacks",
    "uninstall_compression_loss": "aac.tf.callbacks",
    "export_model": "aac.tf.export",
    "ExportError": "aac.tf.export",
    "accuracy_aware_fit": "aac.tf.fit",
    "POINTWISE": "aac.tf.keras_graph",
    "current_call_context": "aac.tf.keras_internals",
    "own_variables": "aac.tf.keras_internals",
    "InputSpec": "aac.tf.layers",
    "iter_layers": "aac.tf.layers",
    "model_style": "aac.tf.layers",
    "ModelTraceError": "aac.tf.layers",
    "copy_model": "aac.tf.models",
    "origin": "aac.tf.models",
    "parameter_count": "aac.tf.models",
    "prepare_model": "aac.tf.models",
    "rebuildable_layers": "aac.tf.models",
    "TFModel": "aac.tf.models",
    "ScopeIndex": "aac.tf.scopes",
    "ScopeSelection": "aac.tf.scopes",
    "SummaryWriter": "aac.tf.summary",
    "add_transform": "aac.tf.transforms",
    "effective_value": "aac.tf.transforms",
    "fold_all": "aac.tf.transforms",
    "fold_transforms": "aac.tf.transforms",
    "has_transforms": "aac.tf.transforms",
    "iter_transforms": "aac.tf.transforms",
    "Mask": "aac.tf.transforms",
    "original": "aac.tf.transforms",
    "TransformError": "aac.tf.transforms",
    "transforms_of": "aac.tf.transforms",
    "WeightTransform": "aac.tf.transforms",
}

__all__ = [
    "CompressionCallback",
    "CompressionStatisticsCallback",
    "ExportError",
    "InputSpec",
    "Mask",
    "ModelTraceError",
    "POINTWISE",
    "ScopeIndex",
    "ScopeSelection",
    "SummaryWriter",
    "TFBackend",
    "TFCompressionAlgorithm",
    "TFFramework",
    "TFModel",
    "TransformError",
    "WeightTransform",
    "__version__",
    "accuracy_aware_fit",
    "adapt_batchnorm",
    "add_transform",
    "copy_model",
    "current_call_context",
    "effective_value",
    "export_model",
    "fold_all",
    "fold_transforms",
    "has_transforms",
    "input_batches",
    "install_compression_loss",
    "iter_layers",
    "iter_transforms",
    "model_style",
    "origin",
    "original",
    "own_variables",
    "parameter_count",
    "prepare_model",
    "rebuildable_layers",
    "transforms_of",
    "uninstall_compression_loss",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aac.tf' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
