"""NNCF's documented rb_sparsity + quantization config (seed 004), verbatim, on a small MobileNetV2."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from aac.core import create_accuracy_aware_training_loop, create_compressed_model, load_config
from aac.quant.torch.algorithm import QuantizationAlgorithm
from aac.quant.torch.testing import MobileNetV2

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "seed_004_rb_sparsity_quantization.json"


def data(count: int = 16, batch: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Images whose class is the brightest colour channel: learnable by a tiny network in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(count, 3, 224, 224, generator=generator)
    y = torch.randint(0, 3, (count,), generator=generator)
    x[torch.arange(count), y] += 0.5
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, count, batch)]


def train_epoch(controller: Any, model: torch.nn.Module, epoch: int = 0, optimizer: Any = None, lr_scheduler: Any = None) -> float:
    model.train()
    total = 0.0
    for x, y in data():
        controller.scheduler.step()
        loss = F.cross_entropy(model(x), y) + controller.loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
    return total


@torch.no_grad()
def validate(model: torch.nn.Module, epoch: int = 0) -> float:
    model.eval()
    batches = data(seed=1)
    return 100.0 * sum(int((model(x).argmax(1) == y).sum()) for x, y in batches) / sum(len(y) for _, y in batches)


def test_the_seed_config_loads_with_its_legacy_spellings() -> None:
    config = load_config(CONFIG)
    rb, quantization = config["compression"]
    assert config["input_info"] == {"sample_size": [1, 3, 224, 224]}
    assert rb["sparsity_init"] == 0.01
    assert rb["params"] == {"schedule": "exponential", "sparsity_target": 0.52, "sparsity_target_epoch": 5, "sparsity_freeze_epoch": 10}
    assert quantization["initializer"] == {"range": {"num_init_steps": 1, "type": "min_max"}}
    assert len(config.notes) == 6
    assert config["optimizer"]["type"] == "Adam"  # training keys stay in the open root


def test_the_seed_config_runs_on_a_small_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = load_config(CONFIG)
    model = MobileNetV2(classes=3)
    controller, model = create_compressed_model(model, config)
    rb, quantization = controller.children
    assert rb.name == "rb_sparsity" and isinstance(quantization, QuantizationAlgorithm)
    assert "features.0.0" not in [layer.name for layer in rb.layers]  # the ignored scope resolved on this model
    assert "features.0.0" in quantization.weight_quantizers
    controller.initialize(data())  # num_init_steps = 1: one batch of statistics
    assert all(q.is_initialized for _, _, q in quantization.quantizers())

    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)  # the seed's optimizer and learning rate
    levels = []
    for epoch in range(2):
        controller.scheduler.epoch_step()
        levels.append(rb.compression_rate)
        train_epoch(controller, model, epoch, optimizer)
    assert levels[0] == pytest.approx(0.01) and levels[1] == pytest.approx(1 - 0.99 * (0.48 / 0.99) ** 0.2)
    assert set(controller.statistics()) == {"rb_sparsity", "quantization"}

    model.eval()
    x = data(count=2, batch=2)[0][0]
    with torch.no_grad():
        expected = model(x).numpy()
    ort = pytest.importorskip("onnxruntime")
    path = controller.export_model(tmp_path / "mobilenet.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    step = min(float(q.step_and_zero()[0].detach().min()) for _, _, q in quantization.quantizers())
    assert np.abs(actual - expected).max() <= step


def test_the_seed_config_under_the_early_exit_loop(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = copy.deepcopy(dict(load_config(CONFIG)))
    config["accuracy_aware_training"] = {
        "mode": "early_exit",
        "params": {"maximal_absolute_accuracy_degradation": 100.0, "maximal_total_epochs": 2},
    }
    model = MobileNetV2(classes=3)
    controller, model = create_compressed_model(model, config)
    controller.initialize(data())
    # a budget no model can miss, on purpose: the test is about the schedule, not the metric
    loop = create_accuracy_aware_training_loop(
        config, controller, uncompressed_model_accuracy=50.0, verbose=False, check_metric_scale=False
    )
    loop.run(
        model,
        train_epoch_fn=train_epoch,
        validate_fn=validate,
        configure_optimizers_fn=lambda: (torch.optim.Adam(model.parameters(), lr=0.001), None),
        log_dir=tmp_path,
    )
    assert loop.statistics is not None and loop.statistics.total_epochs == 2  # the schedule (5 epochs) cannot complete in 2
    assert "the schedule never completed" in loop.statistics.stop_reason
