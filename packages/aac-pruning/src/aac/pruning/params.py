"""The ``filter_pruning`` config section as a typed object, with NNCF's defaults.

The JSON Schema (``schemas/filter_pruning.schema.json``) has already checked types and ranges when
this runs; what is left are the rules that relate two keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aac.core.errors import ConfigError, ConfigProblem
from aac.pruning.legr_config import check_learned_ranking, learned_ranking_defaults


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
        problems = check_section(raw, path)
        if problems:
            raise ConfigError(problems)
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__ and k != "pruning_init"}
        return cls(pruning_init=float(raw.get("pruning_init", 0.0)), **{**learned_ranking_defaults(params), **known})


def check_section(raw: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    """The rules that relate two keys (``AlgorithmSpec.check``: ``load_config`` reports them too)."""
    params = raw.get("params", {})
    if not isinstance(params, Mapping):
        return []
    if "pruning_target" in params and "pruning_flops_target" in params:
        return [
            ConfigProblem(
                f"{path}.params",
                "set either pruning_target (fraction of filters) or pruning_flops_target (fraction of FLOPs), not both",
            )
        ]
    # pruning_init above the target is NNCF's (aac.core.config.legacy notes it; _init_pruning starts there)
    return check_learned_ranking(params, path)
