"""Shared helpers: compress a model built in code with a filter_pruning section.

``tests/`` runs in both of aac-pruning's sessions, ``tests/torch/`` with torch only and ``tests/tf/`` with
TensorFlow only; each framework's ``conftest.py`` binds ``compressor`` to its input layout.
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
def compressor() -> Callable[[tuple[int, ...]], Callable[..., Any]]:
    """``compressor(default_shape)`` -> ``compress(model, shape, section_keys..., **params) -> controller``
    (``shape`` None: no input_info)."""

    def bind(default_shape: tuple[int, ...]) -> Callable[..., Any]:
        def build(model: Any, shape: tuple[int, ...] | None = default_shape, section: dict | None = None, **params: Any):
            controller, compressed = create_compressed_model(model, _config(shape, section, params))
            assert compressed is model
            return controller

        return build

    return bind
