"""quantization with magnitude_sparsity on Keras models: both config orders strip and export, and both loops
(the adaptive search moves the sparsity level while quantization keeps training) on sklearn's digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

import keras
from sklearn.datasets import load_digits

from aac.core import CompositeController, create_compressed_model
from aac.tf import accuracy_aware_fit
from aac.tf.models import iter_layers
from aac.tf.testing import compile_classifier, make_data, sequential_model

QUANT = {
    "algorithm": "quantization",
    "initializer": {"range": {"num_init_samples": 100}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
}
SPARSITY = {
    "algorithm": "magnitude_sparsity",
    "sparsity_init": 0.2,
    "params": {"sparsity_target": 0.6, "sparsity_target_epoch": 2, "sparsity_freeze_epoch": 3},
}
INPUT = {"sample_size": [1, 64]}


@pytest.mark.parametrize("order", ["sparsity_first", "quantization_first"])
def test_both_orders_strip_to_sparse_quantized_weights(order: str, tmp_path: Path) -> None:
    x, _ = make_data(64)
    sections = [SPARSITY, QUANT] if order == "sparsity_first" else [QUANT, SPARSITY]
    controller, model = create_compressed_model(sequential_model(), {"input_info": {"sample_size": [1, 8]}, "compression": sections})
    assert isinstance(controller, CompositeController)
    quant = next(c for c in controller.children if c.name == "quantization")
    sparsity = next(c for c in controller.children if c.name == "magnitude_sparsity")
    controller.initialize(x)
    sparsity.compression_rate = 0.5
    expected = np.asarray(model(x, training=False))
    stripped = controller.strip()
    np.testing.assert_allclose(stripped(x, training=False), expected, atol=1e-5)
    layers = dict(iter_layers(stripped))
    kernels = [layers[p].kernel.numpy() for p in quant.weight_quantizers]
    zeros = sum(int(np.sum(k == 0)) for k in kernels)
    assert zeros >= round(0.5 * sum(k.size for k in kernels))  # the masks' zeros survive quantization
    loaded = keras.saving.load_model(controller.export_model(tmp_path / "mixed.keras"), compile=False)
    np.testing.assert_allclose(loaded(x, training=False), expected, atol=1e-5)


@pytest.fixture(scope="module")
def digits() -> tuple[Any, list[Any], float]:
    data = load_digits()
    x, y = (data.data[:900] / 16.0).astype("float32"), data.target[:900].astype("int32")
    split = x[:700], y[:700], x[700:], y[700:]
    keras.utils.set_random_seed(0)
    model = compile_classifier(sequential_model(features=64, classes=10, hidden=32))
    model.fit(split[0], split[1], batch_size=50, epochs=15, verbose=0)
    accuracy = model.evaluate(split[2], split[3], verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.8
    return split, model.get_weights(), accuracy


def _compressed(weights: list[Any], config: dict[str, Any], x: np.ndarray) -> tuple[Any, keras.Model]:
    model = compile_classifier(sequential_model(features=64, classes=10, hidden=32), learning_rate=3e-3)
    model.set_weights(weights)
    controller, model = create_compressed_model(model, config)
    controller.initialize(x)
    return controller, model


def test_early_exit_with_quantization_and_sparsity(digits, tmp_path: Path) -> None:
    (x, y, xv, yv), weights, baseline = digits
    config = {
        "input_info": INPUT,
        "compression": [SPARSITY, QUANT],
        "accuracy_aware_training": {
            "mode": "early_exit",
            "params": {"maximal_absolute_accuracy_degradation": 0.05, "maximal_total_epochs": 5},
        },
    }
    controller, model = _compressed(weights, config, x)
    model, stats = accuracy_aware_fit(
        model, controller, config, (x, y), (xv, yv), uncompressed_model_accuracy=baseline, batch_size=50, log_dir=tmp_path, verbose=False
    )
    assert stats.feasible and stats.total_epochs <= 5 and stats.compressed_accuracy >= baseline - 0.05
    assert controller.children[0].measured_level() == pytest.approx(0.6, abs=0.01)


def test_adaptive_search_moves_sparsity_while_quantizing(digits, tmp_path: Path) -> None:
    (x, y, xv, yv), weights, baseline = digits
    sparsity = {**SPARSITY, "params": {**SPARSITY["params"], "sparsity_target": 0.9}}
    config = {
        "input_info": INPUT,
        "compression": [sparsity, QUANT],
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 0.03,
                "initial_training_phase_epochs": 2,
                "patience_epochs": 1,
                "initial_compression_rate_step": 0.2,
                "minimal_compression_rate_step": 0.1,
                "maximal_total_epochs": 6,
            },
        },
    }
    controller, model = _compressed(weights, config, x)
    model, stats = accuracy_aware_fit(
        model, controller, config, (x, y), (xv, yv), uncompressed_model_accuracy=baseline, batch_size=50, log_dir=tmp_path, verbose=False
    )
    assert stats.mode == "adaptive_compression_level" and stats.total_epochs <= 6
    assert any(r.phase == "search" for r in stats.history)
    assert controller.compression_rate == pytest.approx(stats.compression_rate)
    stripped = compile_classifier(controller.strip())
    accuracy = stripped.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(model.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"], abs=1e-6)
