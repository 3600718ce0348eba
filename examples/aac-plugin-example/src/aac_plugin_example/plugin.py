"""The module named by the ``aac`` entry point: it tells aac what this package provides.

Keep it cheap to import. ``aac plugins`` and ``aac validate`` import every plugin module, so the
algorithm is named by an import string: torch is imported only when a model is compressed with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources

from aac.core import AlgorithmSpec, hookimpl


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    schema = resources.files("aac_plugin_example").joinpath("weight_clipping.schema.json").read_text(encoding="utf-8")
    return [
        AlgorithmSpec(
            name="weight_clipping",
            adaptive=True,  # the adaptive loop may search its rate; WeightClipping.adaptive says the same
            frameworks={"torch": "aac_plugin_example.clipping:build"},  # called with aac-torch's TorchModel
            schema=json.loads(schema),  # Draft 2020-12, shipped as a package file
            package="aac-plugin-example",
            description="clip the largest weights of every layer; the rate is the fraction clipped",
            aliases={"params.clipped_fraction": "params.clipping_rate"},  # the key's name in version 0.0 of this plugin
        )
    ]
