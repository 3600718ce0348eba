"""aac-pruning's plugin: registers ``filter_pruning``. Importing it imports neither torch, TensorFlow nor NumPy."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from aac.core.hookspecs import hookimpl
from aac.core.specs import AlgorithmSpec
from aac.pruning.params import FilterPruningParams, check_section

SCHEMA_FILE = "filter_pruning.schema.json"

#: NNCF's former spellings inside a ``filter_pruning`` section -> current key (core applies them before validation)
LEGACY_ALIASES = {"params.weight_importance": "params.filter_importance"}


@cache
def schema() -> dict[str, Any]:
    """The canonical JSON Schema of a ``filter_pruning`` section, shipped inside the package."""
    return json.loads(resources.files("aac.pruning").joinpath("schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def legacy_notes(section: dict[str, Any], path: str) -> list[str]:
    """``AlgorithmSpec.legacy``: what an NNCF config means by a ``pruning_init`` above the section's target.

    aac's rules would refuse it, but NNCF ran such configs (its own test configs do): it builds the model
    pruned at ``pruning_init`` and caps every scheduled level at the target. aac reads it the same way
    (:class:`aac.pruning.algorithm.FilterPruningAlgorithm`); the note says so, because a user who wrote
    it most likely meant something else. The section is left as it is.
    """
    params = section.get("params", {})
    if not isinstance(params, dict):
        return []  # the schema reports it
    key = "pruning_flops_target" if "pruning_flops_target" in params else "pruning_target"
    init, target = section.get("pruning_init", 0.0), params.get(key, FilterPruningParams.pruning_target)
    if not (_is_number(init) and _is_number(target) and init > target):
        return []
    return [
        f"{path}.pruning_init {init} is above params.{key} {target}; read as NNCF reads it: the model is built "
        f"pruned at {init} (an adaptive search's initial phase starts there) and every scheduled level is "
        f"capped at {target}"
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            name="filter_pruning",
            adaptive=True,
            frameworks={"torch": "aac.pruning.torch.algorithm:create", "tf": "aac.pruning.tf.algorithm:create"},
            schema=schema(),
            package="aac-pruning",
            aliases=LEGACY_ALIASES,
            legacy=legacy_notes,
            check=check_section,
            description="structured filter pruning with dependency-aware groups and physical removal",
        )
    ]
