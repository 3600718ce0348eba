"""Legacy NNCF values and placements, mapped before validation with a note each.

:mod:`aac.core.config.aliases` renames keys; this module handles what older NNCF configs wrote
differently in other ways in the parts of a config that core owns, so that a config that NNCF 2.x ran
loads unchanged:

* a value NNCF renamed: ``target_device: "VPU"`` (NNCF 2.0-2.8) is today's ``"NPU"``;
* a section NNCF moved: NNCF 2.0 read ``accuracy_aware_training`` from inside the adaptive algorithm's
  compression section, with its parameters directly in it; it moves to the root, in the current shape.

What an algorithm's own section wrote differently is mapped by the plugin that owns the algorithm
(``AlgorithmSpec.legacy``; aac-pruning's notes a ``pruning_init`` above the target, for instance).

Every change leaves a note starting with the JSON path the user wrote; a conflict (the value given at
both the old and the new place) is a problem, as for a legacy key given with its current name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aac.core.config.accuracy_aware import ADAPTIVE
from aac.core.errors import ConfigProblem

#: ``target_device`` values NNCF renamed -> their current value
TARGET_DEVICES = {"VPU": "NPU"}

Sections = list[tuple[str, dict[str, Any]]]


def _sections(data: dict[str, Any]) -> Sections:
    compression = data.get("compression")
    if isinstance(compression, list):
        return [(f"$.compression[{i}]", s) for i, s in enumerate(compression) if isinstance(s, dict)]
    return [("$.compression", compression)] if isinstance(compression, dict) else []


def _target_device(data: dict[str, Any], sections: Sections, notes: list[str], problems: list[ConfigProblem]) -> None:
    device = data.get("target_device")
    if isinstance(device, str) and device in TARGET_DEVICES:
        data["target_device"] = TARGET_DEVICES[device]
        notes.append(f"$.target_device '{device}' is NNCF's former name of '{TARGET_DEVICES[device]}'; read as '{TARGET_DEVICES[device]}'")


def _nested_accuracy_aware(data: dict[str, Any], sections: Sections, notes: list[str], problems: list[ConfigProblem]) -> None:
    """NNCF 2.0's ``compression[i].accuracy_aware_training`` (adaptive mode, keys given flat) -> the root section."""
    for path, section in sections:
        nested = section.get("accuracy_aware_training")
        if nested is None:
            continue
        where = f"{path}.accuracy_aware_training"
        if "accuracy_aware_training" in data:
            del section["accuracy_aware_training"]  # reported here, not again as an unknown key
            problems.append(
                ConfigProblem(where, "accuracy_aware_training is given both here (NNCF 2.0's place) and at the root; keep the root one")
            )
            continue
        moved = section.pop("accuracy_aware_training")
        if isinstance(moved, dict) and "mode" not in moved:
            moved = {"mode": ADAPTIVE, "params": moved}
            notes.append(
                f"{where} is NNCF 2.0's placement; read as $.accuracy_aware_training with mode '{ADAPTIVE}' "
                "(the only mode of NNCF 2.0) and these keys as its params"
            )
        else:
            notes.append(f"{where} is NNCF 2.0's placement; read as $.accuracy_aware_training")
        data["accuracy_aware_training"] = moved


#: each mapping, in the order applied (placements first: a moved section then gets its keys' aliases)
MAPPINGS: tuple[Callable[[dict[str, Any], Sections, list[str], list[ConfigProblem]], None], ...] = (
    _nested_accuracy_aware,
    _target_device,
)


def apply_legacy(data: dict[str, Any]) -> tuple[list[str], list[ConfigProblem]]:
    """Map ``data`` (a private copy, changed in place); return the notes and any conflicts."""
    notes: list[str] = []
    problems: list[ConfigProblem] = []
    sections = _sections(data)
    for mapping in MAPPINGS:
        mapping(data, sections, notes, problems)
    return notes, problems
