"""Tests of the example plugin, written the way a plugin's own tests should be.

The plugin module is registered in code (``autoload=False``), so the tests see exactly this plugin
and aac-core's built-ins, whatever else is installed. Run them after installing the package:
``pip install -e .[test] && pytest``.
"""

from __future__ import annotations

from typing import Any

import pytest
from aac_plugin_example import plugin
from aac_plugin_example.clipping import WeightClipping

from aac.core import ConfigError, Registry, create_compressed_model, get_plugin_manager, load_config


class Net:
    """The smallest model aac-core's generic backend accepts."""

    def __init__(self) -> None:
        self.weights: dict[str, Any] = {"conv": [[2.5, -0.5], [-3.0, 0.25]], "bias": 1.5, "name": "net", "frozen": [9.0]}

    def state_dict(self) -> dict[str, Any]:
        return dict(self.weights)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = dict(state)


@pytest.fixture
def registry() -> Registry:
    return Registry(get_plugin_manager(autoload=False, plugins=[plugin]))


def compress(registry: Registry, params: dict[str, Any], **config: Any) -> tuple[WeightClipping, Net]:
    controller, model = create_compressed_model(
        Net(), {**config, "compression": {"algorithm": "weight_clipping", "params": params}}, registry=registry)
    assert isinstance(controller, WeightClipping)
    return controller, model


def test_weights_are_clipped_when_applied(registry: Registry) -> None:
    controller, model = compress(registry, {"threshold": 1.0}, ignored_scopes=["frozen"])
    assert model.weights == {"conv": [[1.0, -0.5], [-1.0, 0.25]], "bias": 1.0, "name": "net", "frozen": [9.0]}
    assert controller.statistics()["weight_clipping"].scalars == {"threshold": 1.0, "clipped_values": 3.0}


def test_weights_are_clipped_again_every_epoch(registry: Registry) -> None:
    controller, model = compress(registry, {"threshold": 2.0})
    model.weights["bias"] = 5.0  # what a training epoch might do
    controller.scheduler.epoch_step()
    assert model.weights["bias"] == 2.0


def test_state_round_trip(registry: Registry) -> None:
    controller, _ = compress(registry, {"threshold": 1.0})
    restored, _ = create_compressed_model(Net(), {"compression": {"algorithm": "weight_clipping"}},
                                          compression_state=controller.get_state(), registry=registry)
    assert restored.get_state() == controller.get_state()


def test_the_old_key_name_still_works(registry: Registry) -> None:
    config = load_config({"compression": {"algorithm": "weight_clipping", "params": {"max_abs": 0.5}}}, registry=registry)
    assert config["compression"]["params"] == {"threshold": 0.5}
    assert config.notes


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [({"threshold": 0}, "$.compression.params.threshold", "0 is less than or equal to the minimum of 0"),
     ({"treshold": 1.0}, "$.compression.params.treshold", "unknown key 'treshold' (did you mean 'threshold'?)")],
)
def test_the_schema_catches_mistakes(registry: Registry, params: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"compression": {"algorithm": "weight_clipping", "params": params}}, registry=registry)
    assert [p.path for p in info.value.problems] == [path]
    assert info.value.problems[0].message.startswith(message)
