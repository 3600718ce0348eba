"""Shared helpers: compress a model built in code with a filter_pruning section.

Works with torch, TensorFlow or both installed: the ``tests(aac-pruning)`` session has torch only
(the ``test_pruning_tf_*`` modules skip), ``tests(aac-pruning-tf)`` has TensorFlow only and runs
just those modules.
"""

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from aac.core import create_compressed_model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is first imported
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

try:
    import torch
except ImportError:  # the TensorFlow-only session
    torch = None
else:
    # the test models are tiny: extra threads only add synchronisation, which costs a lot on a busy CI machine
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    if torch is not None:
        torch.manual_seed(0)
    keras = sys.modules.get("keras")  # imported by the TensorFlow tests; never imported here for torch-only runs
    if keras is not None:
        keras.utils.set_random_seed(0)


def _config(shape: Any, section: dict | None, params: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"compression": {"algorithm": "filter_pruning", **(section or {}), "params": params}}
    if shape is not None:
        config["input_info"] = {"sample_size": list(shape)}
    return config


@pytest.fixture()
def compress() -> Callable[..., Any]:
    """``compress(model, shape, section_keys..., **params) -> controller`` (``shape`` None: no input_info)."""

    def build(model: Any, shape: list[int] | None = (1, 3, 8, 8), section: dict | None = None, **params: Any):
        controller, compressed = create_compressed_model(model, _config(shape, section, params))
        assert compressed is model
        return controller

    return build


@pytest.fixture()
def compress_tf() -> Callable[..., Any]:
    """The same for Keras models, whose inputs are channels-last: ``shape`` defaults to ``(1, 8, 8, 3)``."""

    def build(model: Any, shape: list[int] | None = (1, 8, 8, 3), section: dict | None = None, **params: Any):
        controller, compressed = create_compressed_model(model, _config(shape, section, params))
        assert compressed is model
        return controller

    return build
