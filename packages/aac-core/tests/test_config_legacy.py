"""Legacy NNCF values and placements: what NNCF 2.0-2.14 configs wrote is read as today's config, with a note.

The algorithm sections are NNCF's names with permissive stand-in schemas (``nncf_registry``), so only
core's mapping is under test; aac-pruning's tests check what filter pruning does with the result.
"""

from __future__ import annotations

import pytest

from aac.core import ConfigError, ConfigProblem, Registry, load_config

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


@pytest.mark.parametrize(
    ("params", "key", "target"),
    [
        ({"pruning_target": 0.1}, "pruning_target", 0.1),
        ({"pruning_flops_target": 0.3}, "pruning_flops_target", 0.3),
        ({}, "pruning_target", 0.5),  # the default target
    ],
)
def test_pruning_init_above_the_target_is_kept_with_nncf_semantics_noted(
    nncf_registry: Registry, params: dict, key: str, target: float
) -> None:
    """tests/torch/data/configs/resnet18_pruning_accuracy_aware.json: pruning_init 0.95, pruning_target 0.1."""
    section = {"algorithm": "filter_pruning", "pruning_init": 0.95, "params": params}
    config = load_config({"compression": [section]}, registry=nncf_registry)
    assert config["compression"] == [section]
    assert config.notes == (
        f"$.compression[0].pruning_init 0.95 is above params.{key} {target}; read as NNCF reads it: the model is built pruned "
        f"at 0.95 (an adaptive search's initial phase starts there) and every scheduled level is capped at {target}",
    )
    assert load_config({"compression": [PRUNING]}, registry=nncf_registry).notes == ()
