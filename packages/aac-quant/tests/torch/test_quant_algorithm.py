"""quantization on torch models: placement, range initialization, BN adaptation, statistics, state."""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from aac.core import CompressionStage, ConfigError, create_compressed_model
from aac.core.errors import AacError, CompressionRateError
from aac.quant.torch.algorithm import INPUT_QUANTIZER, QuantizationAlgorithm
from aac.quant.torch.quantizers import AsymmetricQuantizer, FakeQuantizer, SymmetricQuantizer
from aac.torch.batchnorm import adapt_batchnorm, default_inputs
from aac.torch.testing.digits import DigitsCNN


class Branchy(nn.Module):
    """Two convolutions read the same tensor; a residual sum feeds the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.left = nn.Conv2d(8, 8, 3, padding=1)
        self.right = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stem(x)))
        y = self.left(x) + self.right(x)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


SHAPE = {"sample_size": [1, 3, 8, 8]}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def compress(
    model: nn.Module | None = None, shape: dict[str, Any] | None = SHAPE, **section: Any
) -> tuple[QuantizationAlgorithm, nn.Module]:
    config: dict[str, Any] = {"compression": {"algorithm": "quantization", **section}}
    if shape is not None:
        config["input_info"] = shape
    controller, compressed = create_compressed_model(model or Branchy(), config)
    assert isinstance(controller, QuantizationAlgorithm)
    return controller, compressed


def data(batches: int = 4, size: int = 8, shape: tuple[int, ...] = (3, 8, 8)) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(size, *shape) + 0.5, torch.zeros(size, dtype=torch.long)) for _ in range(batches)]


def test_weight_and_input_quantizers_are_placed() -> None:
    controller, model = compress()
    assert set(controller.weight_quantizers) == {"stem", "left", "right", "fc"}
    assert all(isinstance(model.get_submodule(n).parametrizations.weight[0], SymmetricQuantizer) for n in ("stem", "left", "fc"))
    sites = {tuple(s.consumers) for s in controller.activation_sites}
    assert sites == {("stem",), ("left", "right"), ("fc",)}  # left and right read the same tensor: one quantizer
    shared = next(s for s in controller.activation_sites if s.consumers == ["left", "right"])
    assert getattr(model.left, INPUT_QUANTIZER) is shared.quantizer and not hasattr(model.right, INPUT_QUANTIZER)
    assert controller.compression_stage() == CompressionStage.FULLY_COMPRESSED
    with pytest.raises(CompressionRateError, match="no adjustable compression rate"):
        controller.compression_rate = 0.5


def test_the_model_computes_with_quantized_weights_and_inputs() -> None:
    controller, model = compress()
    controller.initialize(data())
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    fq_weight = model.stem.weight
    step = float(model.stem.parametrizations.weight[0].step_and_zero()[0].detach())
    assert torch.allclose(fq_weight / step, torch.round(fq_weight / step), atol=1e-4)
    quantizer = getattr(model.stem, INPUT_QUANTIZER)
    seen = {}
    model.stem.register_forward_hook(lambda m, args, out: seen.update(input=args[0]))
    model(x)
    assert torch.equal(seen["input"], quantizer(x))


def test_quantize_inputs_false_leaves_the_model_input_alone() -> None:
    controller, _ = compress(quantize_inputs=False)
    assert {tuple(s.consumers) for s in controller.activation_sites} == {("left", "right"), ("fc",)}


def test_group_and_section_scopes() -> None:
    controller, _ = compress(weights={"ignored_scopes": ["fc"]}, activations={"target_scopes": ["{re}left|right"]})
    assert set(controller.weight_quantizers) == {"stem", "left", "right"}
    assert [s.consumers for s in controller.activation_sites] == [["left", "right"]]
    controller, model = compress(ignored_scopes=["stem"])
    assert "stem" not in controller.weight_quantizers and not parametrize.is_parametrized(model.stem)
    with pytest.raises(ConfigError) as info:
        compress(weights={"ignored_scopes": ["fcc"]})
    assert info.value.problems[0].path == "$.compression.weights.ignored_scopes"
    with pytest.raises(AacError, match="found nothing to quantize"):
        compress(target_scopes=["bn"])


def test_modes_bits_and_per_channel_shapes() -> None:
    controller, model = compress(preset="mixed", weights={"per_channel": True, "bits": 4}, activations={"per_channel": True})
    stem_weight = model.stem.parametrizations.weight[0]
    assert isinstance(stem_weight, SymmetricQuantizer) and stem_weight.scale.shape == (8,) and stem_weight.levels.qmin == -7
    for site in controller.activation_sites:
        assert isinstance(site.quantizer, AsymmetricQuantizer)
    assert getattr(model.fc, INPUT_QUANTIZER).input_low.shape == (8,)
    transposed = nn.Sequential(nn.ConvTranspose2d(3, 5, 2), nn.Flatten(), nn.Linear(5 * 81, 2))
    controller, model = compress(transposed, weights={"per_channel": True})
    assert model[0].parametrizations.weight[0].scale.shape == (5,)  # output channels of a transposed conv: axis 1


class ConvAndLinearReadOneTensor(nn.Module):
    """A convolution (channels on axis 1) and a linear layer (features on the last axis) read the same tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 4, 1)
        self.linear = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean() + self.linear(x).mean()


def test_per_channel_inputs_of_one_tensor_need_one_channel_layout() -> None:
    shape = {"sample_size": [1, 8, 8, 8]}
    with pytest.raises(AacError, match=r"layers \['conv', 'linear'\] read the same tensor but expect different channel layouts") as caught:
        compress(ConvAndLinearReadOneTensor(), shape, activations={"per_channel": True})
    assert "conv: 8 channels on axis 1, linear: 8 channels on axis -1" in str(caught.value)
    controller, model = compress(ConvAndLinearReadOneTensor(), shape)  # per tensor: one quantizer serves both
    assert [s.consumers for s in controller.activation_sites] == [["conv", "linear"]]
    assert model.conv.parametrizations.weight[0].input_partner is model.linear.parametrizations.weight[0].input_partner


@pytest.mark.parametrize("kind", ["min_max", "mean_min_max", "mixed_min_max", "threesigma", "percentile", "mean_percentile"])
def test_every_range_initializer(kind: str) -> None:
    controller, model = compress(initializer={"range": {"type": kind, "num_init_samples": 16}})
    batches = data()
    controller.initialize(batches)
    stem = getattr(model.stem, INPUT_QUANTIZER)
    assert stem.is_initialized and stem.signed  # the input has negative values
    assert not getattr(model.left, INPUT_QUANTIZER).signed  # ReLU output
    values = torch.cat([b[0] for b in batches[:2]])
    low, high = (float(v) for v in stem.current_range())
    if kind == "min_max":
        assert high == pytest.approx(float(values.abs().max()), rel=1e-5)
    else:
        assert 0.5 < high <= float(values.abs().max()) * 1.01
    assert low < 0


def test_num_init_samples_and_num_init_steps_count_samples_and_batches() -> None:
    def used(**range_keys: Any) -> float:
        controller, model = compress(initializer={"range": {"type": "min_max", **range_keys}})
        batches = [(torch.full((4, 3, 8, 8), float(i + 1)), None) for i in range(6)]
        controller.initialize(batches)
        return float(getattr(model.stem, INPUT_QUANTIZER).current_range()[1])

    assert used(num_init_samples=8) == pytest.approx(2.0, rel=1e-2)  # 2 batches of 4 samples
    assert used(num_init_steps=3) == pytest.approx(3.0, rel=1e-2)
    assert used(num_init_samples=1000) == pytest.approx(6.0, rel=1e-2)  # the loader runs out first


def test_per_layer_range_entries() -> None:
    controller, model = compress(
        initializer={
            "range": [
                {"type": "min_max", "target_quantizer_group": "activations", "target_scopes": ["stem"], "num_init_samples": 8},
                {"type": "percentile", "target_quantizer_group": "activations", "params": {"min_percentile": 40, "max_percentile": 60}},
            ]
        }
    )
    assert controller.range_settings("activations", ["stem"]).type == "min_max"
    assert controller.range_settings("activations", ["fc"]).type == "percentile"
    assert controller.range_settings("weights", ["fc"]).type == "mixed_min_max"  # no entry for weights: the default
    controller.initialize(data())
    fc_high = float(getattr(model.fc, INPUT_QUANTIZER).current_range()[1])
    stem_high = float(getattr(model.stem, INPUT_QUANTIZER).current_range()[1])
    assert fc_high < stem_high


def test_zero_samples_skip_activation_initialization() -> None:
    controller, model = compress(initializer={"range": {"num_init_samples": 0}})
    controller.initialize(data())
    quantizer = getattr(model.stem, INPUT_QUANTIZER)
    assert quantizer.is_initialized and float(quantizer.scale) == 1.0


def test_uninitialized_activations_initialize_from_the_first_batch_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from aac.quant import ranges

    ranges._lazy_warned.clear()
    controller, model = compress()
    with caplog.at_level(logging.WARNING, logger="aac.quant"):
        model(torch.randn(4, 3, 8, 8) * 5)
    assert "controller.initialize(data_loader)" in caplog.text
    assert all(s.quantizer.is_initialized for s in controller.activation_sites)
    assert float(getattr(model.stem, INPUT_QUANTIZER).scale) > 5


def test_batchnorm_adaptation_reestimates_statistics() -> None:
    controller, model = compress(initializer={"batchnorm_adaptation": {"num_bn_adaptation_samples": 16}})
    assert torch.equal(model.bn.running_mean, torch.zeros(8))
    model.train()
    controller.initialize(data(batches=4, size=8))
    assert model.training and model.bn.training and model.bn.momentum == 0.1
    assert int(model.bn.num_batches_tracked) == 2  # 16 samples = 2 batches of 8
    assert not torch.equal(model.bn.running_mean, torch.zeros(8))
    untouched_controller, untouched = compress(initializer={"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}})
    untouched_controller.initialize(data())
    assert torch.equal(untouched.bn.running_mean, torch.zeros(8))


def test_batchnorm_adaptation_on_a_one_shot_iterator_says_it_had_no_data_left() -> None:
    """Range initialization reads the data first; a generator has nothing left for batch-norm adaptation."""
    controller, model = compress(initializer={"batchnorm_adaptation": {"num_bn_adaptation_samples": 16}})
    with pytest.warns(UserWarning, match="one-shot iterator that range initialization has used; pass a list"):
        controller.initialize(iter(data(batches=4, size=8)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compress(initializer={"batchnorm_adaptation": {"num_bn_adaptation_samples": 16}})[0].initialize(data(batches=4, size=8))


def test_adapt_batchnorm_and_input_conventions() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    used = adapt_batchnorm(model, [{"input": torch.randn(5, 3, 2, 2)}] * 3, 10, input_fn=lambda b: ((b["input"],), {}))
    assert used == 10
    assert default_inputs(torch.ones(1)) == ((torch.ones(1),), {})
    assert default_inputs(([1, 2], 3)) == ((1, 2), {})
    assert default_inputs({"x": 1}) == ((), {"x": 1})
    assert default_inputs(({"x": 1}, 0)) == ((), {"x": 1})


def test_weight_ranges_follow_the_weights_and_initialize_updates_them() -> None:
    controller, model = compress(weights={"per_channel": True}, initializer={"range": {"type": "min_max"}})
    quantizer = model.left.parametrizations.weight[0]
    weight = model.left.parametrizations.weight.original
    assert np.allclose(quantizer.current_range()[1], weight.detach().abs().amax(dim=(1, 2, 3)).numpy(), rtol=1e-5)
    with torch.no_grad():
        weight.mul_(2)
    controller.initialize(None)
    assert np.allclose(quantizer.current_range()[1], weight.detach().abs().amax(dim=(1, 2, 3)).numpy(), rtol=1e-5)


def test_ranges_train_with_the_model() -> None:
    controller, model = compress()
    controller.initialize(data())
    quantizer = getattr(model.left, INPUT_QUANTIZER)
    before = float(quantizer.scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for x, _ in data(batches=5):
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert quantizer.scale.grad is not None and float(quantizer.scale) != before


def test_statistics_tables() -> None:
    controller, _ = compress(activations={"bits": 6})
    controller.initialize(data())
    stats = controller.statistics()["quantization"]
    assert {
        k: stats.scalars[k]
        for k in (
            "weight_quantizers",
            "activation_quantizers",
            "quantized_layers_ratio",
            "initialized",
            "enabled_ratio",
            "bit_complexity_ratio",
            "matmuls_quantized",
            "matmuls_float",
        )
    } == {
        "weight_quantizers": 4.0,
        "activation_quantizers": 3.0,
        "quantized_layers_ratio": 1.0,
        "initialized": 1.0,
        "enabled_ratio": 1.0,
        "bit_complexity_ratio": 1.0,
        "matmuls_quantized": 4.0,
        "matmuls_float": 0.0,
    }  # 6-bit inputs of 8-bit weights: 8-bit products
    assert 0.25 < stats.scalars["weight_size_ratio"] < 0.3  # 8-bit weights, float32 biases
    bits, table = stats.tables
    assert bits.rows == (("activations", 6, "symmetric", 3), ("weights", 8, "symmetric", 4))
    assert table.header[:4] == ("quantizer", "group", "mode", "bits")
    assert {row[0] for row in table.rows} >= {"stem.weight", "input of left, right"}


def test_disable_scheduler_and_state_round_trip() -> None:
    controller, model = compress()
    controller.initialize(data())
    controller.scheduler.epoch_step()
    controller.disable_scheduler()
    assert controller.scheduler_disabled
    state, weights = controller.get_state(), copy.deepcopy(model.state_dict())
    fresh_model = Branchy()
    fresh, _ = create_compressed_model(
        fresh_model, {"input_info": SHAPE, "compression": {"algorithm": "quantization"}}, compression_state=state
    )
    fresh_model.load_state_dict(weights)
    assert fresh.get_state() == state
    assert all(q.is_initialized for _, _, q in fresh.quantizers())
    assert [q.signed for _, _, q in fresh.quantizers()] == [q.signed for _, _, q in controller.quantizers()]
    model.eval()
    fresh_model.eval()
    x = torch.randn(3, 3, 8, 8)
    assert torch.equal(fresh_model(x), model(x))
    with pytest.raises(AacError, match="quantizers"):
        fresh.load_state({**state, "params": {"quantizers": 99}})


def test_quantizers_are_weight_transforms_owned_by_the_algorithm() -> None:
    controller, model = compress()
    assert all(isinstance(q, FakeQuantizer) and q.owner == "quantization" for _, _, q in controller.quantizers())
    with pytest.raises(AacError, match="already carries aac compression"):
        create_compressed_model(model, {"compression": {"algorithm": "quantization"}})


def test_digits_model_without_input_info() -> None:
    controller, model = compress(DigitsCNN(), shape=None)
    controller.initialize([(torch.rand(4, 1, 8, 8), None)])
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("signed", [True, False])
def test_explicit_signedness_overrides_the_statistics(signed: bool) -> None:
    controller, model = compress(activations={"signed": signed})
    controller.initialize(data())  # the model input has negative values, the ReLU outputs have none
    assert getattr(model.stem, INPUT_QUANTIZER).signed is signed
    assert getattr(model.left, INPUT_QUANTIZER).signed is signed
    assert all(q.signed for q in controller.weight_quantizers.values())  # weights stay signed
