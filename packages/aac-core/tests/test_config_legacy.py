"""Legacy NNCF values and placements: what NNCF 2.0-2.14 configs wrote is read as today's config, with a note.

The algorithm sections are NNCF's names with permissive stand-in schemas (``nncf_registry``), so only
core's mappings (and the hook through which a plugin maps its own section) are under test; aac-pruning's
tests check its ``pruning_init`` note and what filter pruning does with the result.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import pytest

from aac.core import AlgorithmSpec, ConfigError, ConfigProblem, Registry, get_plugin_manager, hookimpl, load_config
from aac.core.testing import build_toy_quant

PRUNING = {"algorithm": "filter_pruning", "pruning_init": 0.1, "params": {"pruning_target": 0.4}}


def test_target_device_vpu_is_read_as_npu(nncf_registry: Registry) -> None:
    config = load_config({"target_device": "VPU", "compression": {"algorithm": "quantization"}}, registry=nncf_registry)
    assert config["target_device"] == "NPU"
    assert config.notes == ("$.target_device 'VPU' is NNCF's former name of 'NPU'; read as 'NPU'",)
    assert load_config({"target_device": "NPU"}, registry=nncf_registry).notes == ()


def test_nncf_2_0_accuracy_aware_section_inside_the_compression_section_moves_to_the_root(nncf_registry: Registry) -> None:
    """NNCF 2.0 (examples/torch/classification/configs/pruning/resnet18_imagenet_accuracy_aware.json): flat keys, adaptive mode."""
    nested = {"maximal_accuracy_degradation": 1.0, "initial_training_phase_epochs": 100, "patience_epochs": 30}
    config = load_config({"compression": [{**PRUNING, "accuracy_aware_training": nested}]}, registry=nncf_registry)
    assert config["accuracy_aware_training"] == {
        "mode": "adaptive_compression_level",
        "params": {"maximal_relative_accuracy_degradation": 1.0, "initial_training_phase_epochs": 100, "patience_epochs": 30},
    }
    assert config["compression"] == [PRUNING]
    assert config.notes == (
        "$.compression[0].accuracy_aware_training is NNCF 2.0's placement; read as $.accuracy_aware_training with mode "
        "'adaptive_compression_level' (the only mode of NNCF 2.0) and these keys as its params",
        "$.accuracy_aware_training.params.maximal_accuracy_degradation is a legacy spelling; "
        "read as $.accuracy_aware_training.params.maximal_relative_accuracy_degradation",
    )
    assert config.accuracy_aware_training.patience_epochs == 30


def test_a_nested_section_in_the_current_shape_moves_as_it_is(nncf_registry: Registry) -> None:
    section = {"mode": "early_exit", "params": {"maximal_absolute_accuracy_degradation": 0.5}}
    config = load_config({"compression": {**PRUNING, "accuracy_aware_training": section}}, registry=nncf_registry)
    assert config["accuracy_aware_training"] == section
    assert config.notes == ("$.compression.accuracy_aware_training is NNCF 2.0's placement; read as $.accuracy_aware_training",)


def test_the_section_at_both_places_is_a_conflict(nncf_registry: Registry) -> None:
    root = {"mode": "early_exit", "params": {"maximal_absolute_accuracy_degradation": 0.5}}
    with pytest.raises(ConfigError) as info:
        load_config(
            {"accuracy_aware_training": root, "compression": [{**PRUNING, "accuracy_aware_training": {"patience_epochs": 3}}]},
            registry=nncf_registry,
        )
    assert info.value.problems == [
        ConfigProblem(
            "$.compression[0].accuracy_aware_training",
            "accuracy_aware_training is given both here (NNCF 2.0's place) and at the root; keep the root one",
        )
    ]


class RetiredValuePlugin:
    """An algorithm whose plugin maps a value NNCF retired (``mode: "old"`` is today's ``"new"``) through ``AlgorithmSpec.legacy``."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []  # what ``legacy`` was given

    def legacy(self, section: dict[str, Any], path: str) -> list[str]:
        self.seen.append(copy.deepcopy(section))
        if section.get("mode") != "old":
            return []
        section["mode"] = "new"
        return [f"{path}.mode 'old' is read as 'new'"]

    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        schema = {"type": "object", "properties": {"mode": {"enum": ["new"]}, "params": {"type": "object"}}}
        aliases = {"params.old_knob": "params.knob"}
        return [
            AlgorithmSpec(
                name="retiring", adaptive=False, frameworks={"python": build_toy_quant}, schema=schema, aliases=aliases, legacy=self.legacy
            )
        ]


def test_a_plugin_maps_its_own_legacy_values_after_its_aliases() -> None:
    """Core keeps no algorithm's legacy table: the plugin's ``legacy`` runs on the section, after its key aliases, before validation."""
    plugin = RetiredValuePlugin()
    registry = Registry(get_plugin_manager(autoload=False, plugins=[plugin]))

    config = load_config({"compression": [{"algorithm": "retiring", "mode": "old", "params": {"old_knob": 1}}]}, registry=registry)

    assert plugin.seen == [{"algorithm": "retiring", "mode": "old", "params": {"knob": 1}}], "the aliases were applied first"
    assert config["compression"] == [{"algorithm": "retiring", "mode": "new", "params": {"knob": 1}}], "validated as mapped"
    assert config.notes == (
        "$.compression[0].params.old_knob is a legacy spelling; read as $.compression[0].params.knob",
        "$.compression[0].mode 'old' is read as 'new'",
    )


def test_core_keeps_no_legacy_mapping_of_an_algorithm_section(nncf_registry: Registry) -> None:
    """NNCF's ``pruning_init`` above the target is aac-pruning's to note; a stand-in ``filter_pruning`` without it gets no note."""
    section = {"algorithm": "filter_pruning", "pruning_init": 0.95, "params": {"pruning_target": 0.1, "weight_importance": "L2"}}
    config = load_config({"compression": [section]}, registry=nncf_registry)
    assert config.notes == (
        "$.compression[0].params.weight_importance is a legacy spelling; read as $.compression[0].params.filter_importance",
    ), "only the spelling the stand-in declares"
