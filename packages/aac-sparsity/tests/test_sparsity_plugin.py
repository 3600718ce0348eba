"""Plugin registration, schemas and config loading (legacy spellings included)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from aac.core import ConfigError, Registry, get_plugin_manager, load_config
from aac.sparsity import plugin

NAMES = ("magnitude_sparsity", "rb_sparsity", "const_sparsity")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(get_plugin_manager(autoload=False, plugins=[plugin]))


def test_entry_point_registers_the_three_algorithms() -> None:
    from importlib import metadata

    points = {e.name: e.value for e in metadata.entry_points(group="aac")}
    assert points["sparsity"] == "aac.sparsity.plugin"
    specs = {s.name: s for s in plugin.aac_algorithms()}
    assert set(specs) == set(NAMES)
    assert specs["magnitude_sparsity"].adaptive and specs["rb_sparsity"].adaptive and not specs["const_sparsity"].adaptive
    assert all(s.package == "aac-sparsity" for s in specs.values())
    assert {name: set(s.frameworks) for name, s in specs.items()} == {
        "magnitude_sparsity": {"torch", "tf"},
        "const_sparsity": {"torch", "tf"},
        "rb_sparsity": {"torch", "tf"},
    }
    assert all(target.startswith(f"aac.sparsity.{framework}.") for s in specs.values() for framework, target in s.frameworks.items())


@pytest.mark.parametrize("name", NAMES)
def test_schemas_are_valid_draft_2020_12_with_ids(name: str) -> None:
    schema = plugin.schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://aac.dev/schemas/{name}.schema.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_plugin_module_does_not_import_torch_or_numpy() -> None:
    code = "import sys, aac.sparsity.plugin as p; list(p.aac_algorithms()); print([m for m in ('torch', 'numpy') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def config(section: dict[str, Any]) -> dict[str, Any]:
    return {"compression": section}


def test_every_parameter_is_accepted(registry: Registry) -> None:
    params = {
        "schedule": "polynomial",
        "sparsity_target": 0.6,
        "sparsity_target_epoch": 3,
        "sparsity_freeze_epoch": 4,
        "power": 2,
        "concave": False,
        "update_per_optimizer_step": True,
        "steps_per_epoch": 10,
        "multistep_steps": [1, 2],
        "multistep_sparsity_levels": [0.1, 0.2, 0.3],
        "patience": 2,
        "step": 0.1,
        "eps": 0.01,
        "sparsity_level_setting_mode": "global",
        "weight_importance": "abs",
    }
    loaded = load_config(
        config({"algorithm": "magnitude_sparsity", "sparsity_init": 0.1, "params": params, "ignored_scopes": ["a"], "target_scopes": "b"}),
        registry=registry,
    )
    assert loaded["compression"]["params"] == params
    rb_params = {k: v for k, v in params.items() if k != "weight_importance"}
    load_config(config({"algorithm": "rb_sparsity", "params": rb_params}), registry=registry)
    load_config(config({"algorithm": "const_sparsity", "ignored_scopes": "x"}), registry=registry)


def test_seed_spellings_are_mapped(registry: Registry) -> None:
    loaded = load_config(
        config(
            {
                "algorithm": "rb_sparsity",
                "params": {
                    "schedule": "exponential",
                    "sparsity_init": 0.01,
                    "sparsity_target": 0.52,
                    "sparsity_steps": 5,
                    "sparsity_training_steps": 10,
                },
            }
        ),
        registry=registry,
    )
    section = loaded["compression"]
    assert section["sparsity_init"] == 0.01
    assert section["params"] == {
        "schedule": "exponential",
        "sparsity_target": 0.52,
        "sparsity_target_epoch": 5,
        "sparsity_freeze_epoch": 10,
    }
    assert any("sparsity_steps" in note for note in loaded.notes)


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"algorithm": "magnitude_sparsity", "params": {"sparsity_target": 1.0}}, "$.compression.params.sparsity_target"),
        ({"algorithm": "magnitude_sparsity", "params": {"schedule": "cosine"}}, "$.compression.params.schedule"),
        ({"algorithm": "magnitude_sparsity", "params": {"weight_importance": "l1"}}, "$.compression.params.weight_importance"),
        ({"algorithm": "rb_sparsity", "params": {"weight_importance": "abs"}}, "$.compression.params.weight_importance"),
        ({"algorithm": "const_sparsity", "params": {}}, "$.compression.params"),
        (
            {"algorithm": "magnitude_sparsity", "params": {"sparsity_levl_setting_mode": "local"}},
            "$.compression.params.sparsity_levl_setting_mode",
        ),
    ],
)
def test_schema_problems_name_the_key(registry: Registry, section: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(config(section), registry=registry)
    assert path in [p.path for p in info.value.problems], info.value


def test_both_spellings_conflict(registry: Registry) -> None:
    with pytest.raises(ConfigError, match="both the legacy key"):
        load_config(
            config({"algorithm": "magnitude_sparsity", "params": {"sparsity_steps": 3, "sparsity_target_epoch": 4}}), registry=registry
        )


def test_schema_files_are_plain_json() -> None:
    from importlib import resources

    for name in NAMES:
        text = resources.files("aac.sparsity").joinpath("schemas", f"{name}.schema.json").read_text()
        assert json.loads(text)["title"] == name


def test_cross_key_rules_are_config_problems(registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            {
                "compression": [
                    {
                        "algorithm": "magnitude_sparsity",
                        "params": {"schedule": "multistep", "multistep_steps": [1], "multistep_sparsity_levels": [0.5]},
                    },
                    {"algorithm": "rb_sparsity", "sparsity_init": 0.6},
                ]
            },
            registry=registry,
        )
    assert [p.path for p in info.value.problems] == ["$.compression[0].params.multistep_sparsity_levels", "$.compression[1].sparsity_init"]
