"""The ``knowledge_distillation`` section: NNCF's keys, its defaults and its one cross-key rule."""

import pytest

from aac.core import ConfigError, ConfigProblem, load_config


def test_type_is_required_and_one_of_two():
    with pytest.raises(ConfigError) as info:
        load_config({"compression": [{"algorithm": "knowledge_distillation"}, {"algorithm": "knowledge_distillation", "type": "kl"}]})
    paths = [p.path for p in info.value.problems]
    assert "$.compression[0]" in paths and "$.compression[1].type" in paths


def test_temperature_is_refused_with_mse_as_in_nncf():
    with pytest.raises(ConfigError) as info:
        load_config({"compression": {"algorithm": "knowledge_distillation", "type": "mse", "temperature": 2}})
    assert info.value.problems == [
        ConfigProblem(
            "$.compression.temperature", "temperature softens the softmax loss; type 'mse' has none: remove it or use type 'softmax'"
        )
    ]


def test_scale_and_temperature_are_positive():
    with pytest.raises(ConfigError) as info:
        load_config({"compression": {"algorithm": "knowledge_distillation", "type": "softmax", "scale": 0, "temperature": -1}})
    assert [p.path for p in info.value.problems] == ["$.compression.scale", "$.compression.temperature"]
