"""Legacy NNCF spellings: each is moved to its current key with a note, and old+new together conflict.

The NNCF pages (seeds 000 and 004) still use the old names, so a user copying them must get a working
config - and one reading the notes learns the current name. The algorithm names come from
``NncfNamesPlugin`` (conftest), which stands in for the real algorithm packages.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import pytest

from aac.core import AlgorithmSpec, ConfigError, ConfigProblem, Registry, get_plugin_manager, hookimpl, load_config
from aac.core.testing import ToyPlugin, build_toy_quant

AA = "$.accuracy_aware_training.params"

#: (id, config with the legacy key, the same config as it must read afterwards,
#:  JSON path of the object holding the key, legacy key and current key relative to that object)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, str, str]] = [
    (
        "maximal_accuracy_degradation",
        {
            "accuracy_aware_training": {"mode": "early_exit", "params": {"maximal_accuracy_degradation": 1.0}},
            "compression": {"algorithm": "quantization"},
        },  # without it, the config would also be noted as needing a controller built in code
        {
            "accuracy_aware_training": {"mode": "early_exit", "params": {"maximal_relative_accuracy_degradation": 1.0}},
            "compression": {"algorithm": "quantization"},
        },
        AA,
        "maximal_accuracy_degradation",
        "maximal_relative_accuracy_degradation",
    ),
    (
        "input_sample_size",
        {"input_sample_size": [1, 3, 224, 224]},
        {"input_info": {"sample_size": [1, 3, 224, 224]}},
        "$",
        "input_sample_size",
        "input_info.sample_size",
    ),
    (
        "weight_importance",
        {"compression": [{"algorithm": "filter_pruning", "params": {"weight_importance": "geometric_median", "pruning_target": 0.1}}]},
        {"compression": [{"algorithm": "filter_pruning", "params": {"filter_importance": "geometric_median", "pruning_target": 0.1}}]},
        "$.compression[0]",
        "params.weight_importance",
        "params.filter_importance",
    ),
    (
        "sparsity_steps",
        {"compression": {"algorithm": "rb_sparsity", "params": {"sparsity_steps": 5}}},
        {"compression": {"algorithm": "rb_sparsity", "params": {"sparsity_target_epoch": 5}}},
        "$.compression",
        "params.sparsity_steps",
        "params.sparsity_target_epoch",
    ),
    (
        "sparsity_training_steps",
        {"compression": {"algorithm": "rb_sparsity", "params": {"sparsity_training_steps": 10}}},
        {"compression": {"algorithm": "rb_sparsity", "params": {"sparsity_freeze_epoch": 10}}},
        "$.compression",
        "params.sparsity_training_steps",
        "params.sparsity_freeze_epoch",
    ),
    (
        "initializer.type",
        {"compression": [{"algorithm": "quantization", "initializer": {"type": "min_max"}}]},
        {"compression": [{"algorithm": "quantization", "initializer": {"range": {"type": "min_max"}}}]},
        "$.compression[0]",
        "initializer.type",
        "initializer.range.type",
    ),
    (
        "initializer.num_init_steps",
        {"compression": [{"algorithm": "quantization", "initializer": {"num_init_steps": 1}}]},
        {"compression": [{"algorithm": "quantization", "initializer": {"range": {"num_init_steps": 1}}}]},
        "$.compression[0]",
        "initializer.num_init_steps",
        "initializer.range.num_init_steps",
    ),
]


def _set(data: dict[str, Any], json_path: str, value: Any) -> None:
    """Set ``$.a[0].b.c`` in ``data``, creating objects on the way (to add the current key beside the old)."""
    parts = json_path.removeprefix("$.").replace("[", ".").replace("]", "").split(".")
    target: Any = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    target[parts[-1]] = value


@pytest.mark.parametrize(("legacy", "expected", "where", "old", "new"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_legacy_key_is_read_as_its_current_name(
    nncf_registry: Registry, legacy: dict[str, Any], expected: dict[str, Any], where: str, old: str, new: str
) -> None:
    config = load_config(legacy, registry=nncf_registry)
    assert dict(config) == expected
    assert config.notes == (f"{where}.{old} is a legacy spelling; read as {where}.{new}",)


@pytest.mark.parametrize(("legacy", "where", "old", "new"), [(c[1], *c[3:]) for c in CASES], ids=[c[0] for c in CASES])
def test_legacy_and_current_key_together_conflict(nncf_registry: Registry, legacy: dict[str, Any], where: str, old: str, new: str) -> None:
    both = copy.deepcopy(legacy)  # the parametrized dict is shared with the other tests
    _set(both, f"{where}.{new}", 123)
    with pytest.raises(ConfigError) as info:
        load_config(both, registry=nncf_registry)
    conflicts = [p for p in info.value.problems if p.path == f"{where}.{old}"]
    assert conflicts == [
        ConfigProblem(f"{where}.{old}", f"both the legacy key '{old}' and its current name '{new}' are given; keep '{new}'")
    ], info.value.problems


def test_seed_004_quantization_initializer_moves_both_keys(nncf_registry: Registry) -> None:
    config = load_config(
        {"compression": [{"algorithm": "quantization", "initializer": {"num_init_steps": 1, "type": "min_max"}}]}, registry=nncf_registry
    )
    assert config["compression"][0]["initializer"] == {"range": {"num_init_steps": 1, "type": "min_max"}}
    assert len(config.notes) == 2


def test_aliases_belong_to_their_algorithm(nncf_registry: Registry) -> None:
    """``weight_importance`` is filter pruning's old name; in another algorithm's params it is left alone."""
    config = load_config({"compression": {"algorithm": "toy_quant", "params": {"weight_importance": "L2"}}}, registry=nncf_registry)
    assert config["compression"]["params"] == {"weight_importance": "L2"}
    assert config.notes == ()


def test_alias_conflicts_are_reported_with_every_other_problem(nncf_registry: Registry) -> None:
    data = {
        "input_sample_size": [1, 3],
        "input_info": {"sample_size": [1, 3]},
        "accuracy_aware_training": {"mode": "early_exit", "params": {}},
    }
    with pytest.raises(ConfigError) as info:
        load_config(data, registry=nncf_registry)
    assert [p.path for p in info.value.problems] == [AA, "$.input_sample_size"]


class LegacyKnobPlugin:
    """An algorithm that renamed one of its own keys and declares the old spelling on its spec."""

    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        schema = {
            "type": "object",
            "properties": {"params": {"type": "object", "properties": {"new_knob": {"type": "integer"}}, "additionalProperties": False}},
        }
        return [
            AlgorithmSpec(
                name="knobbed",
                adaptive=False,
                frameworks={"python": build_toy_quant},
                schema=schema,
                aliases={"params.old_knob": "params.new_knob"},
            )
        ]


def test_plugins_declare_their_own_aliases() -> None:
    registry = Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin(), LegacyKnobPlugin()]))

    config = load_config({"compression": {"algorithm": "knobbed", "params": {"old_knob": 3}}}, registry=registry)

    assert config["compression"]["params"] == {"new_knob": 3}
    assert config.notes == ("$.compression.params.old_knob is a legacy spelling; read as $.compression.params.new_knob",)
    with pytest.raises(ConfigError) as info:
        load_config({"compression": {"algorithm": "knobbed", "params": {"old_knob": 3, "new_knob": 4}}}, registry=registry)
    assert info.value.problems == [
        ConfigProblem(
            "$.compression.params.old_knob",
            "both the legacy key 'params.old_knob' and its current name 'params.new_knob' are given; keep 'params.new_knob'",
        )
    ]
