"""aac-distill's plugin: registers ``knowledge_distillation``. Importing it imports no framework."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from aac.core.hookspecs import hookimpl
from aac.core.specs import AlgorithmSpec
from aac.distill.settings import check_section

SCHEMA_FILE = "knowledge_distillation.schema.json"


@cache
def schema() -> dict[str, Any]:
    """The canonical JSON Schema of a ``knowledge_distillation`` section, shipped inside the package."""
    return json.loads(resources.files("aac.distill").joinpath("schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            name="knowledge_distillation",
            adaptive=False,
            frameworks={"torch": "aac.distill.torch.algorithm:create"},
            schema=schema(),
            package="aac-distill",
            check=check_section,
            description="a loss pulling the compressed model's outputs towards the uncompressed model's (the teacher)",
        )
    ]
