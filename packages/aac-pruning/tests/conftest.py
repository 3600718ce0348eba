"""Shared helpers: compress a model built in code with a filter_pruning section."""

from collections.abc import Callable
from typing import Any

import pytest
import torch

from aac.core import create_compressed_model

# the test models are tiny: extra threads only add synchronisation, which costs a lot on a busy CI machine
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture()
def compress() -> Callable[..., Any]:
    """``compress(model, shape, section_keys..., **params) -> controller`` (``shape`` None: no input_info)."""

    def build(model: torch.nn.Module, shape: list[int] | None = (1, 3, 8, 8), section: dict | None = None, **params: Any):
        config: dict[str, Any] = {"compression": {"algorithm": "filter_pruning", **(section or {}), "params": params}}
        if shape is not None:
            config["input_info"] = {"sample_size": list(shape)}
        controller, compressed = create_compressed_model(model, config)
        assert compressed is model
        return controller

    return build
