"""The module named by the ``aac`` entry point: it tells aac what this package provides.

Keep it cheap to import. ``aac plugins`` and ``aac validate`` import every plugin module, so the
algorithm itself is named by an import string and imported only when a model is compressed with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from typing import Any

from aac.core import AlgorithmSpec, hookimpl

#: the JSON Schema (Draft 2020-12) of a ``weight_clipping`` section, shipped as a package file
SCHEMA: dict[str, Any] = json.loads(resources.files(__package__).joinpath("weight_clipping.schema.json").read_text(encoding="utf-8"))


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            name="weight_clipping",
            adaptive=False,  # a fixed level: the adaptive loop cannot search it (it can run beside one that it can)
            frameworks={"python": "aac_plugin_example.clipping:build"},
            schema=SCHEMA,
            package="aac-plugin-example",
            description="clip every weight into [-threshold, threshold]",
            aliases={"params.max_abs": "params.threshold"},  # the key's name in version 0.0 of this plugin
        )
    ]
