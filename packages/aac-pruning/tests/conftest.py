"""Shared helpers: compress a model built in code with a filter_pruning section.

Works with torch, TensorFlow or both installed: the ``tests(aac-pruning)`` session has torch only
(it does not collect the ``test_pruning_tf_*`` modules), ``tests(aac-pruning-tf)`` has TensorFlow only and runs
just those modules.
"""

from collections.abc import Callable
from typing import Any

import pytest

from aac.core import create_compressed_model
from aac.core.pytest_fixtures import deterministic_frameworks, one_torch_thread  # noqa: F401


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
