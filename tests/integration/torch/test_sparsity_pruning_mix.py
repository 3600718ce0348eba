"""Sparsity mixed with filter pruning on PyTorch: one adaptive algorithm per adaptive run, and the strip of
filter pruning cuts the sparsity masks along."""

from __future__ import annotations

import pytest
import torch

from aac.core import ConfigError, create_compressed_model, load_config
from aac.torch.testing.digits import DigitsCNN


def test_filter_pruning_with_sparsity_is_rejected_in_adaptive_mode() -> None:
    config = {
        "accuracy_aware_training": {"mode": "adaptive_compression_level", "params": {"maximal_absolute_accuracy_degradation": 1.0}},
        "compression": [{"algorithm": "filter_pruning"}, {"algorithm": "magnitude_sparsity"}],
    }
    with pytest.raises(ConfigError, match="exactly one") as info:
        load_config(config)
    assert info.value.problems[0].path == "$.compression"
    early_exit = {**config, "accuracy_aware_training": {"mode": "early_exit", "params": {"maximal_absolute_accuracy_degradation": 1.0}}}
    load_config(early_exit)  # any mix is fine under early exit


@pytest.mark.parametrize("sparsity", ["magnitude_sparsity", "rb_sparsity"])
def test_strip_after_filter_pruning_cuts_the_masks_along(sparsity: str) -> None:
    torch.manual_seed(0)
    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "compression": [
            {
                "algorithm": "filter_pruning",
                "pruning_init": 0.5,
                "params": {"filters_multiple_of": 1, "prune_first_conv": True, "prune_downsample_convs": True},
            },
            {"algorithm": sparsity, "sparsity_init": 0.3, "params": {"sparsity_target": 0.5}},
        ],
    }
    model = DigitsCNN()
    controller, model = create_compressed_model(model, config)
    if sparsity == "rb_sparsity":
        with torch.no_grad():
            for layer in controller.children[1].layers:
                layer.transform.logits.copy_(torch.randn_like(layer.transform.logits))
    model.eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        expected = model(x)
    stripped = controller.strip()
    assert stripped.conv1.out_channels < model.conv1.out_channels
    with torch.no_grad():
        assert torch.allclose(stripped(x), expected, atol=1e-5)
