"""The NNCF documentation's configs (seeds 000, 001, 004) load unchanged - comments and old spellings included.

Two layers are checked. Core's part (comment syntax, legacy aliases, cross-field rules) runs always,
with permissive stand-ins for the algorithm plugins that declare the seeds' legacy spellings. The full check, with each algorithm's real schema,
runs once the package providing it is installed, and is skipped with the reason until then.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from aac.core import AlgorithmSpec, Config, Registry, get_plugin_manager, hookimpl, load_config

CONFIGS = Path(__file__).parent / "configs"
AA = "$.accuracy_aware_training.params"

#: seed file -> (packages whose algorithms it uses, JSON paths of the legacy keys it contains)
SEEDS: dict[str, tuple[tuple[str, ...], set[str]]] = {
    "seed_000_adaptive_pruning.json": (
        ("aac.pruning",),
        {f"{AA}.maximal_accuracy_degradation", "$.compression[0].params.weight_importance"},
    ),
    "seed_001_adaptive_pruning.json": (
        ("aac.pruning",),
        {"$.compression[0].params.weight_importance"},
    ),
    "seed_004_rb_sparsity_quantization.json": (
        ("aac.sparsity", "aac.quant"),
        {
            "$.input_sample_size",
            "$.compression[0].params.sparsity_steps",
            "$.compression[0].params.sparsity_training_steps",
            "$.compression[1].initializer.type",
            "$.compression[1].initializer.num_init_steps",
        },
    ),
}


class StandIns:
    """The seeds' algorithms with schemas that accept anything and the legacy spellings the seeds use, which
    the real plugins declare (core owns only the mechanism): only core's own checks apply."""

    ALIASES = {
        "filter_pruning": {"params.weight_importance": "params.filter_importance"},
        "rb_sparsity": {
            "params.sparsity_steps": "params.sparsity_target_epoch",
            "params.sparsity_training_steps": "params.sparsity_freeze_epoch",
        },
        "quantization": {"initializer.type": "initializer.range.type", "initializer.num_init_steps": "initializer.range.num_init_steps"},
    }

    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        return [
            AlgorithmSpec(name=name, adaptive=adaptive, frameworks={}, aliases=self.ALIASES[name])
            for name, adaptive in (("filter_pruning", True), ("rb_sparsity", True), ("quantization", False))
        ]


def legacy_paths(config: Config) -> set[str]:
    return {note.split(" is a legacy spelling", 1)[0] for note in config.notes}


def check_seed(config: Config, name: str) -> None:
    """What every seed must read as, whoever validates the algorithm sections."""
    assert legacy_paths(config) >= SEEDS[name][1]
    if name == "seed_004_rb_sparsity_quantization.json":
        assert config.input_shapes == [[1, 3, 224, 224]]
        assert config["batch_size"] == 256 and config["optimizer"]["type"] == "Adam", "training keys stay"
        quant = config.compression_sections()[1]
        assert quant.get("initializer")["range"] == {"num_init_steps": 1, "type": "min_max"}
        assert config.compression_sections()[0].ignored_scopes == ("MobileNetV2/Sequential[features]/Sequential[0]/Conv2d[0]",)
        return
    params = config.accuracy_aware_training
    assert params is not None
    assert (params.maximal_relative_accuracy_degradation, params.initial_training_phase_epochs, params.patience_epochs) == (1.0, 100, 30)
    assert (
        params.minimal_compression_rate_step,
        params.initial_compression_rate_step,
        params.compression_rate_step_reduction_factor,
        params.validate_every_n_epochs,
        params.maximal_total_epochs,
    ) == (0.025, 0.1, 0.5, 1, 10000)
    pruning = config.compression_sections()[0]
    assert pruning.get("pruning_init") == 0.05 and pruning.params["filter_importance"] == "geometric_median"


@pytest.mark.parametrize("name", SEEDS)
def test_seed_passes_cores_checks(name: str) -> None:
    registry = Registry(get_plugin_manager(autoload=False, plugins=[StandIns()]))
    check_seed(load_config(CONFIGS / name, registry=registry), name)


@pytest.mark.parametrize("name", SEEDS)
def test_seed_loads_with_the_installed_algorithm_packages(name: str) -> None:
    for package in SEEDS[name][0]:
        distribution = "aac-" + package.split(".")[1]
        pytest.importorskip(package, reason=f"{distribution} is not installed; {name} needs its algorithms and schemas")
    check_seed(load_config(CONFIGS / name), name)


def test_seed_files_keep_their_comments() -> None:
    """The files are the documentation's text as written, not cleaned-up JSON."""
    texts: dict[str, Any] = {name: (CONFIGS / name).read_text() for name in SEEDS}
    assert texts["seed_001_adaptive_pruning.json"].count("// Optional") == 5
    assert "/* Compression hyperparameters */" in texts["seed_004_rb_sparsity_quantization.json"]
