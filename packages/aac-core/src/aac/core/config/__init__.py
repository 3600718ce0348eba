"""NNCF-compatible config loading: ``load_config(source) -> Config``.

``source`` is a path to a JSON file (``//`` and ``/* */`` comments allowed), a JSON string or a dict.
Legacy spellings are mapped to current keys, then the config is validated against the composed
schema and the cross-field rules; *every* problem is reported at once, each with its JSON path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aac.core.config.accuracy_aware import ADAPTIVE, EARLY_EXIT, AccuracyAwareParams
from aac.core.config.aliases import apply_aliases
from aac.core.config.parsing import read_source
from aac.core.config.rules import check_accuracy_aware, check_algorithms, check_finite, section_paths, standalone_notes
from aac.core.config.schema import validate
from aac.core.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from aac.core.plugins import Registry

__all__ = ["ADAPTIVE", "EARLY_EXIT", "AccuracyAwareParams", "AlgorithmSection", "Config", "load_config"]


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


def load_config(source: str | os.PathLike[str] | Mapping[str, Any], *, registry: Registry | None = None) -> Config:
    """Load, normalise and validate a config; raise :class:`ConfigError` listing every problem.

    :param source: a path to a (commented) JSON file, a JSON string, or a mapping.
    :param registry: the plugin registry whose algorithms are allowed (default: the installed ones).
    """
    from aac.core.plugins import default_registry

    if isinstance(source, Config) and registry is None:
        return source
    registry = registry or default_registry()
    data, name = read_source(source)
    if not isinstance(data, Mapping):
        raise ConfigError([ConfigProblem("$", f"a config must be a JSON object, not {type(data).__name__}")], name)
    aliases = {n: s.aliases for n, s in registry.algorithms.items()}
    normalised, notes, problems = apply_aliases(data, aliases)
    problems += check_finite(normalised)
    problems += validate(normalised, registry.algorithms.values())
    problems += check_algorithms(normalised, registry)
    problems += check_accuracy_aware(normalised, registry)
    if problems:
        unique = {(p.path, p.message): p for p in problems}
        raise ConfigError(sorted(unique.values(), key=lambda p: p.path), name)
    config = Config(normalised)
    config.source = name
    config.notes = (*notes, *standalone_notes(normalised))
    return config
