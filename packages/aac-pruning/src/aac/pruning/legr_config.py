"""The LeGR keys of a ``filter_pruning`` section, without NumPy (the plugin's config checks import this).

``params.interlayer_ranking_type: "learned_ranking"`` asks for LeGR's learned per-layer ranking
(:mod:`aac.pruning.ranking`), ``params.legr_params`` tunes the evolutionary search that learns it
(:mod:`aac.pruning.legr`). NNCF's rules for the ranking type apply: ``learned_ranking`` defaults
``all_weights``, ``prune_first_conv`` and ``prune_downsample_convs`` to true and refuses
``all_weights: false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from aac.core.errors import ConfigProblem

LEARNED = "learned_ranking"
#: what ``learned_ranking`` sets when the section leaves it out (NNCF's choice: LeGR ranks every layer)
LEARNED_DEFAULTS = {"all_weights": True, "prune_first_conv": True, "prune_downsample_convs": True}


@dataclass(frozen=True)
class LeGRParams:
    """``params.legr_params`` with NNCF's defaults; ``max_pruning`` None means the section's target."""

    generations: int = 400
    train_steps: int = 200
    max_pruning: float | None = None
    random_seed: int = 42
    population_size: int = 64
    num_samples: int = 16
    mutate_percent: float = 0.1
    scale_sigma: float = 1.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LeGRParams:
        """Build from a validated section's ``params``."""
        given = params.get("legr_params") or {}
        integers = {f.name for f in fields(cls) if f.type == "int"}
        return cls(**{k: int(v) if k in integers else float(v) for k, v in given.items() if k in cls.__dataclass_fields__})


def learned_ranking_defaults(params: Mapping[str, Any]) -> dict[str, bool]:
    """The keys ``learned_ranking`` turns on when the section leaves them out."""
    return dict(LEARNED_DEFAULTS) if params.get("interlayer_ranking_type") == LEARNED else {}


def check_learned_ranking(params: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    """LeGR ranks every layer's filters on one list: ``all_weights: false`` contradicts it (NNCF refuses it too)."""
    if params.get("interlayer_ranking_type") == LEARNED and params.get("all_weights") is False:
        return [
            ConfigProblem(
                f"{path}.params.all_weights",
                "interlayer_ranking_type 'learned_ranking' ranks all layers' filters "
                "together: all_weights must be true (its default with learned_ranking)",
            )
        ]
    return []
