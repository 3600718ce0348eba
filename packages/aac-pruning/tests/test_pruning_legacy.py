"""NNCF's legacy ``filter_pruning`` spellings and values, which aac-pruning's plugin declares (core only applies them).

The registry holds aac-pruning's plugin alone, so what is read here is this package's tables, not a stand-in's.
"""

from __future__ import annotations

from typing import Any

import pytest

import aac.pruning.plugin
from aac.core import Registry, get_plugin_manager, load_config


@pytest.fixture
def registry() -> Registry:
    return Registry(get_plugin_manager(autoload=False, plugins=[aac.pruning.plugin]))


def test_weight_importance_is_read_as_filter_importance(registry: Registry) -> None:
    config = load_config(
        {"compression": {"algorithm": "filter_pruning", "params": {"weight_importance": "geometric_median"}}}, registry=registry
    )
    assert config["compression"]["params"] == {"filter_importance": "geometric_median"}
    assert config.notes == ("$.compression.params.weight_importance is a legacy spelling; read as $.compression.params.filter_importance",)


@pytest.mark.parametrize(
    ("params", "key", "target"),
    [
        ({"pruning_target": 0.1}, "pruning_target", 0.1),
        ({"pruning_flops_target": 0.3}, "pruning_flops_target", 0.3),
        ({}, "pruning_target", 0.5),  # the default target
    ],
)
def test_pruning_init_above_the_target_is_kept_with_nncf_semantics_noted(
    registry: Registry, params: dict[str, Any], key: str, target: float
) -> None:
    """tests/torch/data/configs/resnet18_pruning_accuracy_aware.json: pruning_init 0.95, pruning_target 0.1."""
    section = {"algorithm": "filter_pruning", "pruning_init": 0.95, "params": params}
    config = load_config({"compression": [section]}, registry=registry)
    assert config["compression"] == [section]
    assert config.notes == (
        f"$.compression[0].pruning_init 0.95 is above params.{key} {target}; read as NNCF reads it: the model is built pruned "
        f"at 0.95 (an adaptive search's initial phase starts there) and every scheduled level is capped at {target}",
    )


def test_pruning_init_at_or_below_the_target_gets_no_note(registry: Registry) -> None:
    section = {"algorithm": "filter_pruning", "pruning_init": 0.1, "params": {"pruning_target": 0.4}}
    assert load_config({"compression": [section]}, registry=registry).notes == ()
