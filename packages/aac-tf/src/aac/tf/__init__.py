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
    from aac.tf.algorithm import TFCompressionAlgorithm
    from aac.tf.backend import TFBackend
    from aac.tf.callbacks import (
        CompressionCallback,
        CompressionStatisticsCallback,
        install_compression_loss,
        uninstall_compression_loss,
    )
    from aac.tf.export import export_model
    from aac.tf.fit import accuracy_aware_fit
    from aac.tf.models import InputSpec, ModelTraceError, TFModel, copy_model, prepare_model
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
        transforms_of,
    )

_EXPORTS = {
    "TFBackend": "aac.tf.backend",
    "TFCompressionAlgorithm": "aac.tf.algorithm",
    "CompressionCallback": "aac.tf.callbacks",
    "CompressionStatisticsCallback": "aac.tf.callbacks",
    "install_compression_loss": "aac.tf.callbacks",
    "uninstall_compression_loss": "aac.tf.callbacks",
    "accuracy_aware_fit": "aac.tf.fit",
    "export_model": "aac.tf.export",
    "InputSpec": "aac.tf.models",
    "ModelTraceError": "aac.tf.models",
    "TFModel": "aac.tf.models",
    "copy_model": "aac.tf.models",
    "prepare_model": "aac.tf.models",
    "ScopeIndex": "aac.tf.scopes",
    "ScopeSelection": "aac.tf.scopes",
    "SummaryWriter": "aac.tf.summary",
    "WeightTransform": "aac.tf.transforms",
    "Mask": "aac.tf.transforms",
    "TransformError": "aac.tf.transforms",
    "add_transform": "aac.tf.transforms",
    "effective_value": "aac.tf.transforms",
    "fold_all": "aac.tf.transforms",
    "fold_transforms": "aac.tf.transforms",
    "has_transforms": "aac.tf.transforms",
    "transforms_of": "aac.tf.transforms",
}

__all__ = [
    "CompressionCallback",
    "CompressionStatisticsCallback",
    "InputSpec",
    "Mask",
    "ModelTraceError",
    "ScopeIndex",
    "ScopeSelection",
    "SummaryWriter",
    "TFBackend",
    "TFCompressionAlgorithm",
    "TFModel",
    "TransformError",
    "WeightTransform",
    "__version__",
    "accuracy_aware_fit",
    "add_transform",
    "copy_model",
    "effective_value",
    "export_model",
    "fold_all",
    "fold_transforms",
    "has_transforms",
    "install_compression_loss",
    "prepare_model",
    "transforms_of",
    "uninstall_compression_loss",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aac.tf' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
