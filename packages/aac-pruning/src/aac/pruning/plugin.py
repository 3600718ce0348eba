"""aac-pruning's plugin: registers ``filter_pruning``. Importing it imports neither torch, TensorFlow nor NumPy."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from aac.core.hookspecs import hookimpl
from aac.core.specs import AlgorithmSpec
from aac.pruning.params import check_section

SCHEMA_FILE = "filter_pruning.schema.json"


@cache
def schema() -> dict[str, Any]:
    """The canonical JSON Schema of a ``filter_pruning`` section, shipped inside the package."""
    return json.loads(resources.files("aac.pruning").joinpath("schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            name="filter_pruning",
            adaptive=True,
            frameworks={"torch": "aac.pruning.torch.algorithm:create", "tf": "aac.pruning.tf.algorithm:create"},
            schema=schema(),
            package="aac-pruning",
            check=check_section,
            description="structured filter pruning with dependency-aware groups and physical removal",
        )
    ]
