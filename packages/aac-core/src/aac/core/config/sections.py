"""The validated config and its algorithm sections: the types every layer above config loading reads.

A leaf of :mod:`aac.core.config`: it imports nothing of aac but the typed ``accuracy_aware_training``
view, so the plugin records (:mod:`aac.core.specs`), the scope rules and the algorithm packages can name
these types without pulling in schema validation or plugin discovery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aac.core.config.accuracy_aware import AccuracyAwareParams

__all__ = ["AlgorithmSection", "Config", "section_paths"]


def section_paths(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(JSON path, section) for each entry of ``compression``, whether it is one object or a list."""
    compression = data.get("compression")
    if isinstance(compression, list):
        return [(f"$.compression[{i}]", s) for i, s in enumerate(compression)]
    if compression is None:
        return []
    return [("$.compression", compression)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class AlgorithmSection:
    """One entry of ``compression``, with the global scopes merged in.

    ``ignored_scopes`` is the union of the global and the algorithm's own lists; ``target_scopes``
    is the algorithm's own list if it has one, else the global one (NNCF's rule, without NNCF's
    in-place mutation of the global list).
    """

    name: str
    path: str
    raw: Mapping[str, Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    ignored_scopes: tuple[str, ...] = ()
    target_scopes: tuple[str, ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        """A key of the section itself (``pruning_init``, ``initializer`` …)."""
        return self.raw.get(key, default)

    @property
    def validate_scopes(self) -> bool:
        """False if scope entries that match nothing should only be warned about (NNCF's key)."""
        return bool(self.raw.get("validate_scopes", True))

    @property
    def batchnorm_adaptation_samples(self) -> int:
        """``initializer.batchnorm_adaptation.num_bn_adaptation_samples``: 0 without the key, NNCF's 2000 if unset in it."""
        adaptation = (self.raw.get("initializer") or {}).get("batchnorm_adaptation")
        return 0 if adaptation is None else int(adaptation.get("num_bn_adaptation_samples", 2000))


class Config(dict):  # type: ignore[type-arg]
    """A validated config: the plain (alias-normalised) dict plus typed views of what aac reads."""

    source: str | None = None
    #: what a valid config should still tell its reader, each starting with a JSON path; ``aac validate`` prints them
    notes: tuple[str, ...] = ()

    def compression_sections(self) -> list[AlgorithmSection]:
        global_ignored = _as_list(self.get("ignored_scopes"))
        global_target = _as_list(self.get("target_scopes"))
        sections = []
        for path, raw in section_paths(self):
            own_target = _as_list(raw.get("target_scopes"))
            sections.append(
                AlgorithmSection(
                    name=raw["algorithm"],
                    path=path,
                    raw=raw,
                    params=raw.get("params", {}),
                    ignored_scopes=tuple(dict.fromkeys(global_ignored + _as_list(raw.get("ignored_scopes")))),
                    target_scopes=tuple(own_target or global_target),
                )
            )
        return sections

    @property
    def accuracy_aware_training(self) -> AccuracyAwareParams | None:
        section = self.get("accuracy_aware_training")
        return AccuracyAwareParams.from_section(section) if section else None

    @property
    def input_shapes(self) -> list[list[int]]:
        """``input_info`` sample sizes (batch dimension included), as a list of shapes."""
        info = self.get("input_info")
        entries = info if isinstance(info, list) else [info] if info else []
        return [list(e["sample_size"]) for e in entries]
