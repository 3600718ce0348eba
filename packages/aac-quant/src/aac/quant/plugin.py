"""aac-quant's plugin: registers ``quantization``. Importing it imports neither torch nor NumPy.

The cross-key rules (``check``) run in ``load_config``, so ``aac validate`` reports them too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from aac.core.hookspecs import hookimpl
from aac.core.specs import AlgorithmSpec
from aac.quant.settings import check_section

SCHEMA_FILE = "quantization.schema.json"

#: NNCF's former spellings inside a quantization section -> current key (core applies them before validation)
QUANTIZATION_ALIASES = {
    "initializer.type": "initializer.range.type",
    "initializer.num_init_steps": "initializer.range.num_init_steps",
}


@cache
def schema() -> dict[str, Any]:
    """The canonical JSON Schema (Draft 2020-12) of a ``quantization`` section, shipped inside the package."""
    return json.loads(resources.files("aac.quant").joinpath("schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            name="quantization",
            adaptive=False,
            frameworks={"torch": "aac.quant.torch.algorithm:create", "tf": "aac.quant.tf.algorithm:create"},
            schema=schema(),
            package="aac-quant",
            description="fake quantization of weights and layer inputs with learnable ranges; QDQ ONNX export",
            aliases=QUANTIZATION_ALIASES,
            check=check_section,
        )
    ]
