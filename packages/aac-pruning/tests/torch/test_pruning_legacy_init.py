"""``pruning_init`` above the target (NNCF's tests/torch/data/configs/resnet18_pruning_accuracy_aware.json): NNCF's semantics.

NNCF builds the model pruned at ``pruning_init`` and caps every scheduled level at the target, so the
first epoch of the schedule brings the level down to the target; an adaptive search whose initial
phase has no epochs starts from ``pruning_init``.
"""

import pytest

from aac.core import CompressionStage, load_config
from aac.torch.testing.models import ResNet


@pytest.mark.parametrize("schedule", ["exponential", "exponential_with_bias", "baseline"])
def test_built_at_pruning_init_then_held_at_the_target(compress, schedule):
    controller = compress(
        ResNet(),
        section={"pruning_init": 0.95},
        schedule=schedule,
        pruning_target=0.1,
        pruning_steps=3,
        filters_multiple_of=1,
        prune_downsample_convs=True,
    )
    assert controller.compression_rate > 0.8  # as built: pruning_init (channel rounding keeps a few filters)
    assert controller.compression_stage() is CompressionStage.FULLY_COMPRESSED
    rates = []
    for _ in range(4):
        controller.scheduler.epoch_step()
        rates.append(controller.compression_rate)
    assert rates == pytest.approx([0.1] * 4, abs=0.02)


def test_the_nncf_test_config_loads_and_builds(compress):
    section = {
        "algorithm": "filter_pruning",
        "pruning_init": 0.95,
        "params": {"schedule": "exponential", "pruning_target": 0.1, "pruning_steps": 1, "num_init_steps": 0},
    }
    config = load_config(
        {
            "compression": [section],
            "accuracy_aware_training": {
                "mode": "adaptive_compression_level",
                "params": {"maximal_absolute_accuracy_degradation": 1, "initial_training_phase_epochs": 0, "patience_epochs": 1},
            },
        }
    )
    assert len(config.notes) == 1 and "read as NNCF reads it" in config.notes[0]
    controller = compress(ResNet(), section={"pruning_init": 0.95}, pruning_target=0.1, pruning_steps=1)
    assert controller.compression_rate == pytest.approx(controller.maximal_compression_rate)  # 0.95 is beyond reach: the most
