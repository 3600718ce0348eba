"""Legacy NNCF spellings, mapped to the current keys before validation.

Old configs (and the NNCF documentation pages) use names that later NNCF versions renamed. aac
accepts them unchanged, moves each value to its current key and records a note, so that the rest of
aac only ever sees one spelling.

Core maps the keys it owns (the root and ``accuracy_aware_training``); the spellings inside an
algorithm's section belong to the plugin that registers the algorithm, which declares them on its
record (``AlgorithmSpec.aliases``, and ``AlgorithmSpec.legacy`` for older values) - core applies them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aac.core.config.catalog import AlgorithmEntry
from aac.core.config.legacy import apply_legacy
from aac.core.errors import ConfigProblem

#: root-level legacy key -> dotted current key
ROOT_ALIASES = {"input_sample_size": "input_info.sample_size"}

#: legacy key in accuracy_aware_training.params -> current key
ACCURACY_AWARE_ALIASES = {"maximal_accuracy_degradation": "maximal_relative_accuracy_degradation"}


def _move(container: dict[str, Any], old: str, new: str, where: str, notes: list[str], problems: list[ConfigProblem]) -> None:
    old_parts, new_parts = old.split("."), new.split(".")
    parent: Any = container
    for part in old_parts[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or old_parts[-1] not in parent:
        return
    target: Any = container
    for part in new_parts[:-1]:
        if not isinstance(target, dict):
            return
        target = target.setdefault(part, {})
    if not isinstance(target, dict):
        return
    if new_parts[-1] in target:
        problems.append(
            ConfigProblem(f"{where}.{old}", f"both the legacy key '{old}' and its current name '{new}' are given; keep '{new}'")
        )
        del parent[old_parts[-1]]  # reported once, here - not again by the schema as an unknown key
        return
    target[new_parts[-1]] = parent.pop(old_parts[-1])
    notes.append(f"{where}.{old} is a legacy spelling; read as {where}.{new}")


def apply_aliases(
    data: Mapping[str, Any], algorithms: Mapping[str, AlgorithmEntry]
) -> tuple[dict[str, Any], list[str], list[ConfigProblem]]:
    """Return a deep copy of ``data`` with legacy keys moved, the notes made, and any conflicts.

    Core's legacy values and placements (:mod:`aac.core.config.legacy`) are mapped first, so that a
    section moved from NNCF 2.0's place gets its keys' aliases too. Each section then gets its
    algorithm's ``aliases`` and, last, its ``legacy`` mapping, which therefore sees current keys only.
    """
    result = copy.deepcopy(dict(data))
    notes, problems = apply_legacy(result)
    for old, new in ROOT_ALIASES.items():
        _move(result, old, new, "$", notes, problems)
    aat = result.get("accuracy_aware_training")
    if isinstance(aat, dict) and isinstance(aat.get("params"), dict):
        for old, new in ACCURACY_AWARE_ALIASES.items():
            _move(aat["params"], old, new, "$.accuracy_aware_training.params", notes, problems)
    compression = result.get("compression")
    sections = compression if isinstance(compression, list) else [compression]
    for index, section in enumerate(sections):
        if not isinstance(section, dict):
            continue
        where = f"$.compression[{index}]" if isinstance(compression, list) else "$.compression"
        name = section.get("algorithm")
        spec = algorithms.get(name) if isinstance(name, str) else None  # a list or dict here must not crash the look-up
        if spec is None:  # the rules report an unknown (or malformed) name
            continue
        for old, new in spec.aliases.items():
            _move(section, old, new, where, notes, problems)
        if spec.legacy is not None:
            notes.extend(spec.legacy(section, where))
    return result, notes, problems
