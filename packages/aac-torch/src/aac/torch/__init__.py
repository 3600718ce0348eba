"""PyTorch backend of aac.

Importing this package does not import torch: the names below are loaded on first use, so that
listing plugins or validating a config stays cheap. See ``packages/aac-torch/README.md`` for the API
that algorithm packages build on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aac.torch._version import __version__

if TYPE_CHECKING:
    from aac.torch.algorithm import TorchCompressionAlgorithm, TorchFramework
    from aac.torch.attention import AttentionSpec, attention_spec
    from aac.torch.backend import TorchBackend
    from aac.torch.batchnorm import InputFn, adapt_batchnorm, default_inputs, restore_modes
    from aac.torch.fx_graph import get_if_hashable
    from aac.torch.scopes import ScopeIndex, ScopeSelection
    from aac.torch.tracing import ModelTraceError, TorchModel, trace_model
    from aac.torch.transforms import (
        Mask,
        TransformError,
        WeightTransform,
        add_transform,
        cut_channels,
        detach_parametrized_class,
        fold_all,
        fold_transforms,
        has_transforms,
        original,
        remove_transforms,
        transforms_of,
    )

_EXPORTS = {
    "TorchCompressionAlgorithm": "aac.torch.algorithm",
    "TorchFramework": "aac.torch.algorithm",
    "attention_spec": "aac.torch.attention",
    "AttentionSpec": "aac.torch.attention",
    "TorchBackend": "aac.torch.backend",
    "adapt_batchnorm": "aac.torch.batchnorm",
    "default_inputs": "aac.torch.batchnorm",
    "InputFn": "aac.torch.batchnorm",
    "restore_modes": "aac.torch.batchnorm",
    "get_if_hashable": "aac.torch.fx_graph",
    "ScopeIndex": "aac.torch.scopes",
    "ScopeSelection": "aac.torch.scopes",
    "ModelTraceError": "aac.torch.tracing",
    "TorchModel": "aac.torch.tracing",
    "trace_model": "aac.torch.tracing",
    "add_transform": "aac.torch.transforms",
    "cut_channels": "aac.torch.transforms",
    "detach_parametrized_class": "aac.torch.transforms",
    "fold_all": "aac.torch.transforms",
    "fold_transforms": "aac.torch.transforms",
    "has_transforms": "aac.torch.transforms",
    "Mask": "aac.torch.transforms",
    "original": "aac.torch.transforms",
    "remove_transforms": "aac.torch.transforms",
    "TransformError": "aac.torch.transforms",
    "transforms_of": "aac.torch.transforms",
    "WeightTransform": "aac.torch.transforms",
}

__all__ = [
    "AttentionSpec",
    "InputFn",
    "Mask",
    "ModelTraceError",
    "ScopeIndex",
    "ScopeSelection",
    "TorchBackend",
    "TorchCompressionAlgorithm",
    "TorchFramework",
    "TorchModel",
    "TransformError",
    "WeightTransform",
    "__version__",
    "adapt_batchnorm",
    "add_transform",
    "attention_spec",
    "cut_channels",
    "default_inputs",
    "detach_parametrized_class",
    "fold_all",
    "fold_transforms",
    "get_if_hashable",
    "has_transforms",
    "original",
    "remove_transforms",
    "restore_modes",
    "trace_model",
    "transforms_of",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aac.torch' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
