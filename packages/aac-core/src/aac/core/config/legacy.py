"""Legacy NNCF values and placements, mapped before validation with a note each.

:mod:`aac.core.config.aliases` renames keys; this module handles what older NNCF configs wrote
differently in other ways, so that a config that NNCF 2.x ran loads unchanged:

* a value NNCF renamed: ``target_device: "VPU"`` (NNCF 2.0-2.8) is today's ``"NPU"``;
* a section NNCF moved: NNCF 2.0 read ``accuracy_aware_training`` from inside the adaptive algorithm's
  compression section, with its parameters directly in it; it moves to the root, in the current shape;
* a combination NNCF gave a meaning aac's rules would refuse: a ``filter_pruning`` ``pruning_init``
  above its target. NNCF builds the model at ``pruning_init`` and caps every scheduled level at the
  target; aac does the same (:class:`aac.pruning.algorithm.FilterPruningAlgorithm`), and the note
  says so, because a user who wrote it most likely meant something else.

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

#: filter_pruning's default target when the section sets none (NNCF's and aac's)
_PRUNING_TARGET = 0.5

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


def _pruning_init_above_target(data: dict[str, Any], sections: Sections, notes: list[str], problems: list[ConfigProblem]) -> None:
    for path, section in sections:
        params = section.get("params", {})
        if section.get("algorithm") != "filter_pruning" or not isinstance(params, dict):
            continue
        key = "pruning_flops_target" if "pruning_flops_target" in params else "pruning_target"
        init, target = section.get("pruning_init", 0.0), params.get(key, _PRUNING_TARGET)
        if _is_number(init) and _is_number(target) and init > target:
            notes.append(
                f"{path}.pruning_init {init} is above params.{key} {target}; read as NNCF reads it: the model is built "
                f"pruned at {init} (an adaptive search's initial phase starts there) and every scheduled level is "
                f"capped at {target}"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: each mapping, in the order applied (placements first: a moved section then gets its keys' aliases)
MAPPINGS: tuple[Callable[[dict[str, Any], Sections, list[str], list[ConfigProblem]], None], ...] = (
    _nested_accuracy_aware,
    _target_device,
    _pruning_init_above_target,
)


def apply_legacy(data: dict[str, Any]) -> tuple[list[str], list[ConfigProblem]]:
    """Map ``data`` (a private copy, changed in place); return the notes and any conflicts."""
    notes: list[str] = []
    problems: list[ConfigProblem] = []
    sections = _sections(data)
    for mapping in MAPPINGS:
        mapping(data, sections, notes, problems)
    return notes, problems
