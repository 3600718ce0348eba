"""Staged quantization (the section's ``params``): quantizers switch on at their start epochs, ranges are
initialized again then, a checkpoint restores the stage; and the optimizer helpers of NNCF's staged sample."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from aac.core import create_compressed_model
from aac.core.api import CompressionScheduler, CompressionStage
from aac.quant.settings import ACTIVATIONS, WEIGHTS, StagedSettings
from aac.quant.staged import OptimizerSchedule, StagedQuantizationScheduler
from aac.quant.torch.algorithm import QuantizationAlgorithm
from aac.quant.torch.staged import GradientAccumulator, PolyLRDropScheduler, make_optimizer


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def compress(params: dict[str, Any], model: nn.Module | None = None) -> tuple[QuantizationAlgorithm, nn.Module]:
    return create_compressed_model(
        model or net(), {"input_info": {"sample_size": [2, 3, 8, 8]}, "compression": {"algorithm": "quantization", "params": params}}
    )


DATA = [torch.randn(4, 3, 8, 8) for _ in range(2)]


def enabled(controller: QuantizationAlgorithm) -> dict[str, bool]:
    return {group: all(q.enabled for g, _, q in controller.quantizers() if g == group) for group in (WEIGHTS, ACTIVATIONS)}


def test_quantizers_switch_on_at_their_start_epochs() -> None:
    controller, model = compress({"activations_quant_start_epoch": 1, "weights_quant_start_epoch": 2})
    controller.initialize(DATA)
    float_model = net()
    x = torch.randn(2, 3, 8, 8)
    model.eval()
    assert isinstance(controller.scheduler, StagedQuantizationScheduler)
    stages = []
    for _ in range(3):
        controller.scheduler.epoch_step()
        stages.append((controller.scheduler.current_epoch, enabled(controller), controller.compression_stage()))
        if controller.scheduler.current_epoch == 0:
            assert torch.equal(model(x), float_model.eval()(x))  # nothing quantized yet: the float model
    assert stages == [
        (0, {WEIGHTS: False, ACTIVATIONS: False}, CompressionStage.UNCOMPRESSED),
        (1, {WEIGHTS: False, ACTIVATIONS: True}, CompressionStage.PARTIALLY_COMPRESSED),
        (2, {WEIGHTS: True, ACTIVATIONS: True}, CompressionStage.FULLY_COMPRESSED),
    ]
    assert controller.statistics()["quantization"].scalars["enabled_ratio"] == 1.0


def test_ranges_are_initialized_again_when_a_group_switches_on() -> None:
    controller, model = compress({"activations_quant_start_epoch": 1, "weights_quant_start_epoch": 1})
    controller.initialize(DATA)
    controller.scheduler.epoch_step()  # epoch 0: float training moves the weights
    with torch.no_grad():
        model[3].parametrizations.weight.original.mul_(3.0)
        model[0].parametrizations.weight.original.add_(1.0)
    controller.scheduler.epoch_step()  # epoch 1: both groups on, ranges from the current weights and data
    fc = controller.weight_quantizers["3"]
    assert float(fc.scale.detach()) == pytest.approx(float(model[3].parametrizations.weight.original.abs().max()), rel=1e-6)
    conv_input = controller.activation_sites[1].quantizer  # the Linear's input: the conv's (now larger) output
    assert float(conv_input.scale.detach()) > 1.0


def test_a_checkpoint_restores_the_stage() -> None:
    controller, model = compress({"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 3})
    controller.initialize(DATA)
    for _ in range(2):
        controller.scheduler.epoch_step()
    state = controller.get_state()
    fresh, _ = compress({"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 3})
    assert enabled(fresh) == {WEIGHTS: False, ACTIVATIONS: True}
    fresh.load_state(state)
    assert fresh.scheduler.current_epoch == 1 and enabled(fresh) == {WEIGHTS: False, ACTIVATIONS: True}
    for _ in range(2):
        fresh.scheduler.epoch_step()
    assert enabled(fresh) == {WEIGHTS: True, ACTIVATIONS: True}


def test_no_or_empty_params_keep_every_quantizer_on() -> None:
    for params in ({},):
        controller, _ = compress(params)
        assert type(controller.scheduler) is CompressionScheduler and enabled(controller) == {WEIGHTS: True, ACTIVATIONS: True}
    controller, _ = compress({"base_lr": 0.01})  # NNCF's defaults: both groups start at epoch 1
    assert enabled(controller) == {WEIGHTS: False, ACTIVATIONS: False}


def test_learning_rate_and_weight_decay_follow_nncfs_sample() -> None:
    settings = StagedSettings.from_params(
        {"base_lr": 0.1, "base_wd": 0.01, "lr_poly_drop_start_epoch": 2, "lr_poly_drop_duration_epochs": 4, "disable_wd_start_epoch": 3}
    )
    schedule = OptimizerSchedule(settings)
    assert schedule.learning_rate(1.5) is None and schedule.learning_rate(6.0) is None
    assert schedule.learning_rate(2.0) == pytest.approx(0.1) and schedule.learning_rate(4.0) == pytest.approx(0.1 * 0.5**2.1)
    assert schedule.weight_decay(3.0) is None and schedule.weight_decay(3.01) == 0.0
    model = net()
    optimizer = make_optimizer(model.parameters(), settings)
    assert isinstance(optimizer, torch.optim.Adam)
    assert (optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["weight_decay"]) == (0.1, 0.01)
    scheduler = PolyLRDropScheduler(optimizer, settings)
    for _ in range(4):
        scheduler.epoch_step()
    scheduler.step(0.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2.1) and optimizer.param_groups[0]["weight_decay"] == 0.0
    resumed = PolyLRDropScheduler(optimizer, settings)
    resumed.load_state_dict(scheduler.state_dict())
    assert resumed.last_epoch == 4


def test_gradient_accumulation_steps_every_batch_multiplier_batches() -> None:
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    accumulate = GradientAccumulator(optimizer, StagedSettings(batch_multiplier=3))
    weights = model.weight.detach().clone()
    steps = [accumulate(model(torch.ones(1, 2)).sum()) for _ in range(3)]
    assert steps == [False, False, True]
    assert torch.allclose(model.weight.detach(), weights - 1.0)  # the mean of three equal gradients of 1
    assert model.weight.grad is None or float(model.weight.grad.abs().sum()) == 0.0
