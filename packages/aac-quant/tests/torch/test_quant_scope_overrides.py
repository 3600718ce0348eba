"""``scope_overrides``: per-scope quantizer settings for weights and activations (NNCF's key, as RMNet's config uses it)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from aac.core import create_compressed_model, load_config
from aac.core.errors import ConfigError
from aac.quant.torch.algorithm import QuantizationAlgorithm
from aac.quant.torch.quantizers import AsymmetricQuantizer, SymmetricQuantizer


class RMBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x))


class RMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.backbone = nn.Sequential(RMBlock(4), RMBlock(4), RMBlock(4))
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.stem(x)))


def compress(**section: Any) -> tuple[QuantizationAlgorithm, nn.Module]:
    torch.manual_seed(0)
    controller, model = create_compressed_model(
        RMNet(), {"input_info": {"sample_size": [2, 3, 6, 6]}, "compression": {"algorithm": "quantization", **section}}
    )
    controller.initialize([torch.randn(4, 3, 6, 6) for _ in range(2)])
    return controller, model


def site(controller: QuantizationAlgorithm, consumer: str) -> Any:
    return next(s.quantizer for s in controller.activation_sites if consumer in s.consumers)


def test_rmnet_activations_after_elu_are_signed() -> None:
    """NNCF's rmnet_cifar_int8.json: the quantizers of RMBlock[i]/ELU[activation]'s outputs are signed, whatever the statistics say."""
    after_relu = ("backbone.1.conv", "backbone.2.conv", "head")
    plain, _ = compress()
    assert [site(plain, c).signed for c in after_relu] == [False, False, False]  # the statistics see no negative value
    controller, _ = compress(scope_overrides={"activations": {r"{re}RMBlock\[[0-9]*\]/ReLU\[activation\]": {"signed": True}}})
    assert [site(controller, c).signed for c in after_relu] == [True, True, True]


def test_weight_overrides_by_layer() -> None:
    controller, _ = compress(
        weights={"bits": 8},
        scope_overrides={
            "weights": {
                "backbone.1.conv": {"bits": 4, "mode": "asymmetric"},
                "{re}head": {
                    "per_channel": True,
                    "initializer": {"range": {"type": "percentile", "params": {"min_percentile": 10, "max_percentile": 90}}},
                },
            }
        },
    )
    quantizers = controller.weight_quantizers
    assert isinstance(quantizers["backbone.1.conv"], AsymmetricQuantizer) and quantizers["backbone.1.conv"].bits == 4
    assert isinstance(quantizers["stem"], SymmetricQuantizer) and quantizers["stem"].bits == 8
    head = quantizers["head"]
    assert head.channels == 2 and controller.range_settings("weights", ["head"]).type == "percentile"  # the override's own
    assert controller.range_settings("weights", ["stem"]).type == "mixed_min_max"  # the section's
    weight = controller.model.head.parametrizations.weight.original.detach()
    assert float(head.scale.detach().max()) < float(weight.abs().amax()) + 1e-6


def test_later_entries_win_and_activation_modes_change() -> None:
    controller, _ = compress(
        scope_overrides={
            "activations": {
                "{re}backbone": {"mode": "asymmetric", "bits": 6},
                "backbone.2": {"bits": 4},
            }
        }
    )
    assert isinstance(site(controller, "backbone.1.conv"), AsymmetricQuantizer) and site(controller, "backbone.1.conv").bits == 6
    assert site(controller, "backbone.2.conv").bits == 4 and isinstance(site(controller, "backbone.2.conv"), AsymmetricQuantizer)
    assert isinstance(site(controller, "stem"), SymmetricQuantizer) and site(controller, "stem").bits == 8


def test_a_scope_matching_nothing_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        compress(scope_overrides={"weights": {"backbone.7": {"bits": 4}}})
    assert info.value.problems[0].path == "$.compression.scope_overrides.weights"


def test_signed_on_an_asymmetric_override_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            {
                "compression": {
                    "algorithm": "quantization",
                    "scope_overrides": {"activations": {"x": {"mode": "asymmetric", "signed": True}}},
                }
            }
        )
    assert "scope_overrides.activations['x'].signed" in info.value.problems[0].path
