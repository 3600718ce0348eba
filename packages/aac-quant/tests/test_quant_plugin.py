"""Plugin registration, the schema, settings with their defaults and legacy spellings."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from aac.core import ConfigError, Registry, get_plugin_manager, load_config
from aac.quant import plugin
from aac.quant.settings import ASYMMETRIC, SYMMETRIC, QuantizationSettings


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(get_plugin_manager(autoload=False, plugins=[plugin]))


def section(**keys: Any) -> dict[str, Any]:
    return {"algorithm": "quantization", **keys}


def settings(registry: Registry, **keys: Any) -> QuantizationSettings:
    loaded = load_config({"compression": section(**keys)}, registry=registry)
    return QuantizationSettings.from_section(loaded["compression"])


def test_registration() -> None:
    from importlib import metadata

    assert {e.name: e.value for e in metadata.entry_points(group="aac")}["quant"] == "aac.quant.plugin"
    (spec,) = plugin.aac_algorithms()
    assert spec.name == "quantization" and not spec.adaptive and spec.package == "aac-quant"
    assert spec.frameworks == {"torch": "aac.quant.torch.algorithm:create", "tf": "aac.quant.tf.algorithm:create"}


def test_schema_is_valid_with_an_id() -> None:
    schema = plugin.schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://aac.dev/schemas/quantization.schema.json"


def test_plugin_module_does_not_import_torch_or_numpy() -> None:
    code = "import sys, aac.quant.plugin as p; list(p.aac_algorithms()); print([m for m in ('torch', 'numpy') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_defaults(registry: Registry) -> None:
    s = settings(registry)
    assert (s.preset, s.quantize_inputs, s.num_bn_adaptation_samples) == ("performance", True, 2000)
    assert (s.weights.mode, s.weights.bits, s.weights.signed, s.weights.per_channel, s.weights.narrow_range) == (
        SYMMETRIC,
        8,
        True,
        False,
        True,
    )
    assert (s.activations.mode, s.activations.bits, s.activations.signed, s.activations.per_channel) == (SYMMETRIC, 8, None, False)
    (entry,) = s.ranges
    assert (entry.type, entry.num_init_samples, entry.num_init_steps, entry.min_percentile, entry.max_percentile) == (
        "mixed_min_max",
        256,
        None,
        0.1,
        99.9,
    )


def test_presets_and_explicit_modes(registry: Registry) -> None:
    mixed = settings(registry, preset="mixed")
    assert (mixed.weights.mode, mixed.activations.mode) == (SYMMETRIC, ASYMMETRIC)
    explicit = settings(registry, preset="mixed", activations={"mode": "symmetric", "signed": True}, weights={"mode": "asymmetric"})
    assert (explicit.weights.mode, explicit.activations.mode, explicit.activations.signed) == (ASYMMETRIC, SYMMETRIC, True)
    assert explicit.weights.signed is None and not explicit.weights.narrow_range


def test_every_group_key(registry: Registry) -> None:
    s = settings(
        registry,
        weights={"mode": "symmetric", "bits": 4, "signed": True, "per_channel": True, "ignored_scopes": ["fc"], "target_scopes": "conv"},
        activations={"bits": 6, "signed": False, "per_channel": True},
    )
    assert (s.weights.bits, s.weights.per_channel, s.weights.ignored_scopes, s.weights.target_scopes) == (4, True, ("fc",), ("conv",))
    assert (s.activations.bits, s.activations.signed, s.activations.per_channel) == (6, False, True)


def test_range_entry_and_list_forms(registry: Registry) -> None:
    s = settings(
        registry,
        initializer={
            "range": {"type": "percentile", "num_init_samples": 32, "params": {"min_percentile": 1, "max_percentile": 99}},
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 0},
        },
    )
    assert (s.ranges[0].type, s.ranges[0].num_init_samples, s.ranges[0].min_percentile, s.num_bn_adaptation_samples) == (
        "percentile",
        32,
        1.0,
        0,
    )
    listed = settings(
        registry,
        initializer={
            "range": [
                {"type": "min_max", "target_quantizer_group": "weights"},
                {"type": "threesigma", "target_quantizer_group": "activations", "ignored_scopes": ["fc"], "num_init_samples": 8},
            ]
        },
    )
    assert [(r.type, r.group, r.ignored_scopes) for r in listed.ranges] == [
        ("min_max", "weights", ()),
        ("threesigma", "activations", ("fc",)),
    ]
    assert listed.ranges[1].path == "$.compression.initializer.range[1]"


def test_legacy_initializer_spellings(registry: Registry) -> None:
    loaded = load_config({"compression": section(initializer={"num_init_steps": 3, "type": "mean_min_max"})}, registry=registry)
    assert loaded["compression"]["initializer"] == {"range": {"num_init_steps": 3, "type": "mean_min_max"}}
    s = QuantizationSettings.from_section(loaded["compression"])
    assert (s.ranges[0].type, s.ranges[0].num_init_steps) == ("mean_min_max", 3)


@pytest.mark.parametrize(
    ("keys", "path"),
    [
        ({"weights": {"bits": 16}}, "$.compression.weights.bits"),
        ({"activations": {"mode": "asym"}}, "$.compression.activations.mode"),
        ({"preset": "fast"}, "$.compression.preset"),
        ({"initializer": {"range": {"type": "threshold"}}}, "$.compression.initializer.range.type"),
        ({"quantize_outputs": True}, "$.compression.quantize_outputs"),
        ({"weights": {"bitz": 8}}, "$.compression.weights.bitz"),
    ],
)
def test_schema_problems(registry: Registry, keys: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"compression": section(**keys)}, registry=registry)
    assert path in [p.path for p in info.value.problems], info.value


@pytest.mark.parametrize(
    ("keys", "path"),
    [
        ({"activations": {"mode": "asymmetric", "signed": True}}, "$.compression.activations.signed"),
        (
            {"initializer": {"range": {"type": "percentile", "params": {"min_percentile": 90, "max_percentile": 10}}}},
            "$.compression.initializer.range.params",
        ),
    ],
)
def test_cross_key_rules(registry: Registry, keys: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(registry, **keys)
    assert [p.path for p in info.value.problems] == [path]


def test_export_flag_is_accepted(registry: Registry) -> None:
    settings(registry, export_to_onnx_standard_ops=True, quantize_outputs=False, quantize_inputs=False)


def test_cross_key_rules_are_config_problems(registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"compression": section(activations={"mode": "asymmetric", "signed": False})}, registry=registry)
    assert [p.path for p in info.value.problems] == ["$.compression.activations.signed"]
