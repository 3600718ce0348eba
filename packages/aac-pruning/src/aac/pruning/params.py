"""The ``filter_pruning`` config section as a typed object, with NNCF's defaults.

The JSON Schema (``schemas/filter_pruning.schema.json``) has already checked types and ranges when
this runs; what is left are the rules that relate two keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aac.core.errors import ConfigError, ConfigProblem


@dataclass(frozen=True)
class FilterPruningParams:
    pruning_init: float = 0.0
    schedule: str = "exponential"
    pruning_target: float = 0.5
    pruning_flops_target: float | None = None
    pruning_steps: int = 100
    num_init_steps: int = 0
    filter_importance: str = "L2"
    all_weights: bool = False
    prune_first_conv: bool = False
    prune_downsample_convs: bool = False
    prune_batch_norms: bool = True
    filters_multiple_of: int = 8

    @property
    def flops_mode(self) -> bool:
        """True when the level is a fraction of FLOPs rather than of filters."""
        return self.pruning_flops_target is not None

    @property
    def target(self) -> float:
        return self.pruning_flops_target if self.pruning_flops_target is not None else self.pruning_target

    @classmethod
    def from_section(cls, raw: Mapping[str, Any], params: Mapping[str, Any], path: str = "$.compression") -> FilterPruningParams:
        """Build from a validated section (``raw``: the section, ``params``: its ``params``)."""
        if "pruning_target" in params and "pruning_flops_target" in params:
            raise ConfigError([ConfigProblem(
                f"{path}.params",
                "set either pruning_target (fraction of filters) or pruning_flops_target (fraction of FLOPs), not both",
            )])
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__ and k != "pruning_init"}
        result = cls(pruning_init=float(raw.get("pruning_init", 0.0)), **known)
        if result.pruning_init > result.target:
            key = "pruning_flops_target" if result.flops_mode else "pruning_target"
            raise ConfigError([ConfigProblem(
                f"{path}.pruning_init", f"pruning_init {result.pruning_init} is above {key} {result.target}"
            )])
        return result
