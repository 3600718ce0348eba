"""How filters of different layers are compared under ``all_weights`` (``params.interlayer_ranking_type``).

Global pruning ranks the filters of every layer on one list, so each layer's importance scores
(:mod:`aac.pruning.importance`) must first be made comparable:

* ``unweighted_ranking`` (the default): each layer's scores are divided by their L2 norm;
* ``learned_ranking`` (LeGR, Chin et al., "Towards Efficient Model Compression via Learned Global
  Ranking", 2020): each layer ``l`` has learned coefficients ``(a_l, b_l)`` and its scores become
  ``a_l * score + b_l``, unnormalised. The coefficients come from a file
  (``load_ranking_coeffs_path``) or from :func:`aac.pruning.legr.learn_ranking`; until then every layer
  has ``(1, 0)``, the raw scores (the config rules of the ranking type: :mod:`aac.pruning.legr_config`).

A coefficient file is JSON ``{"layer": [a, b], ...}``. aac writes layer paths; a file NNCF wrote
names its graph's nodes (``"ResNet/NNCFConv2d[conv1]/conv2d_0"``), which the model's scopes
resolve to the same layers, so both load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from aac.core.config import AlgorithmSection
from aac.core.errors import ConfigError, ConfigProblem
from aac.core.scopes import ScopeIndex
from aac.pruning.importance import normalized
from aac.pruning.legr_config import LEARNED


class InterlayerRanking(Protocol):
    def __call__(self, layer: str, scores: np.ndarray) -> np.ndarray:
        """``scores`` of the filters of ``layer`` (a layer path), made comparable with other layers'."""


def unweighted_ranking(layer: str, scores: np.ndarray) -> np.ndarray:
    return normalized(scores)


@dataclass(frozen=True)
class LearnedRanking:
    """Affine coefficients per layer path; a layer without coefficients keeps its raw scores (``(1, 0)``)."""

    coefficients: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __call__(self, layer: str, scores: np.ndarray) -> np.ndarray:
        scale, shift = self.coefficients.get(layer, (1.0, 0.0))
        return scale * scores + shift

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({k: list(v) for k, v in self.coefficients.items()}, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, scopes: ScopeIndex, where: str) -> LearnedRanking:
        """Read a coefficient file; its keys are layer paths or any name ``scopes`` resolves (NNCF's node names)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError([ConfigProblem(where, f"cannot read ranking coefficients from {path}: {exc}")]) from exc
        if not isinstance(data, dict):
            raise ConfigError([ConfigProblem(where, f"{path} must hold a JSON object {{layer: [a, b]}}")])
        coefficients, unknown = {}, []
        for name, value in data.items():
            paths = scopes.match(name)
            if len(paths) != 1 or not _pair(value):
                unknown.append(name)
                continue
            coefficients[paths[0]] = (float(value[0]), float(value[1]))
        if unknown:
            raise ConfigError(
                [
                    ConfigProblem(
                        where, f"{path}: {len(unknown)} entries name no layer of the model or are not [a, b] pairs, e.g. {unknown[0]!r}"
                    )
                ]
            )
        return cls(coefficients)


def _pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def interlayer_ranking(section: AlgorithmSection, scopes: ScopeIndex) -> InterlayerRanking:
    """The ranking the section asks for (coefficients loaded from ``load_ranking_coeffs_path`` when given)."""
    params = section.params
    if params.get("interlayer_ranking_type") != LEARNED:
        return unweighted_ranking
    source = params.get("load_ranking_coeffs_path")
    return LearnedRanking.load(source, scopes, f"{section.path}.params.load_ranking_coeffs_path") if source else LearnedRanking()
