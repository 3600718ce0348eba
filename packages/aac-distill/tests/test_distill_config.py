"""The ``knowledge_distillation`` section: NNCF's keys, its defaults and its one cross-key rule."""

import pytest

from aac.core import ConfigError, ConfigProblem, load_config
from aac.distill.settings import DistillationSettings

PRUNING = {"algorithm": "filter_pruning", "pruning_init": 0.1, "params": {"pruning_target": 0.5, "filter_importance": "geometric_median"}}


def test_nncf_pruning_with_distillation_config_loads():
    """examples/torch/classification/configs/pruning/resnet34_imagenet_pruning_geometric_median_kd.json."""
    config = load_config(
        {
            "input_info": {"sample_size": [1, 3, 224, 224]},
            "compression": [PRUNING, {"algorithm": "knowledge_distillation", "type": "softmax"}],
        }
    )
    section = config.compression_sections()[1]
    assert DistillationSettings.from_section(section.raw, section.path) == DistillationSettings("softmax", 1.0, 1.0)


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


def test_distillation_mixes_with_an_adaptive_algorithm_under_the_adaptive_loop():
    config = load_config(
        {
            "accuracy_aware_training": {"mode": "adaptive_compression_level", "params": {"maximal_absolute_accuracy_degradation": 1}},
            "compression": [PRUNING, {"algorithm": "knowledge_distillation", "type": "mse", "scale": 0.5}],
        }
    )
    assert [s.name for s in config.compression_sections()] == ["filter_pruning", "knowledge_distillation"]
