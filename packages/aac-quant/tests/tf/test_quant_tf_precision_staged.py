"""TensorFlow parity: manual and HAWQ/AutoQ mixed precision, staged quantization and its optimizer helpers, scope_overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from aac.core import create_compressed_model
from aac.quant.settings import ACTIVATIONS, WEIGHTS
from aac.quant.tf.algorithm import TFQuantization
from aac.quant.tf.quantizers import QuantizeDequantize
from aac.quant.tf.staged import StagedOptimizerSchedule, make_optimizer


def two_branches() -> Any:
    """Two equal Dense layers (on the input and its negation); the output scales the first by 10 and the second by 0.1."""
    keras.utils.set_random_seed(0)
    x = keras.Input((16,))
    sharp = keras.layers.Dense(4, use_bias=False, name="sharp")
    flat = keras.layers.Dense(4, use_bias=False, name="flat")
    branches = [sharp(keras.layers.Rescaling(1.0)(x)), flat(keras.layers.Rescaling(-1.0)(x))]
    y = keras.layers.Add()([keras.layers.Rescaling(10.0)(branches[0]), keras.layers.Rescaling(0.1)(branches[1])])
    model = keras.Model(x, y)
    flat.kernel.assign(sharp.kernel.numpy())
    return model


def compress(model: Any = None, **section: Any) -> tuple[TFQuantization, Any]:
    initializer = section.pop("initializer", {})
    return create_compressed_model(
        model or two_branches(),
        {
            "input_info": {"sample_size": [2, 16]},
            "compression": {
                "algorithm": "quantization",
                "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}, **initializer},
                **section,
            },
        },
    )


rng = np.random.default_rng(0)
X, Y = rng.normal(size=(64, 16)).astype("float32"), rng.normal(size=(64, 4)).astype("float32")


def test_manual_bit_widths_reach_the_stripped_model(tmp_path: Path) -> None:
    controller, _ = compress(
        initializer={"precision": {"bitwidth_per_scope": [[2, "sharp|WEIGHT"], [3, "flat|WEIGHT"], [6, "sharp|INPUT"]]}}
    )
    controller.initialize((X, Y))
    assert controller.bit_widths() == {"sharp.kernel": 2, "flat.kernel": 3, "input of sharp": 6, "input of flat": 8}
    stripped = controller.strip()
    assert sorted(layer.count for layer in stripped.layers if isinstance(layer, QuantizeDequantize)) == [64, 256]  # 6- and 8-bit
    kernels = {layer.name: layer.kernel.numpy() for layer in stripped.layers if isinstance(layer, keras.layers.Dense)}
    assert len(np.unique(kernels["sharp"])) <= 3 and len(np.unique(kernels["flat"])) <= 7  # narrow signed 2 and 3 bits
    path = controller.export_model(tmp_path / "mixed.keras")
    loaded = keras.saving.load_model(path)
    assert sorted(layer.count for layer in loaded.layers if isinstance(layer, QuantizeDequantize)) == [64, 256]
    np.testing.assert_allclose(loaded(X[:4]).numpy(), stripped(X[:4]).numpy(), rtol=1e-5, atol=1e-6)
    state = controller.get_state()
    fresh, _ = compress(two_branches())
    fresh.load_state(state)
    assert fresh.bit_widths() == controller.bit_widths()


def test_hawq_gives_fewer_bits_to_the_flatter_layer(tmp_path: Path) -> None:
    controller, _ = compress(
        initializer={
            "precision": {
                "type": "hawq",
                "bits": [4, 8],
                "compression_ratio": 1.3,
                "num_data_points": 32,
                "iter_number": 10,
                "dump_init_precision_data": True,
            }
        }
    )
    controller.initialize((X, Y), batch_size=16, criterion=keras.losses.MeanSquaredError(), dump_dir=tmp_path)
    bits = controller.bit_widths()
    assert (bits["sharp.kernel"], bits["flat.kernel"]) == (8, 4)
    traces = json.loads((tmp_path / "hawq.json").read_text())["traces"]
    assert traces["sharp"] > 100 * abs(traces["flat"])  # Hutchinson is unbiased, but the flat layer's estimate is noisy around 0


def test_autoq_lowers_the_less_sensitive_layer() -> None:
    reference = two_branches()

    def metric(model: Any, data: Any) -> float:
        x, _ = data
        return -float(np.mean((model(x).numpy() - reference(x).numpy()) ** 2))

    controller, _ = compress(initializer={"precision": {"type": "autoq", "bits": [2, 4, 8], "compression_ratio": 0.15}})
    controller.initialize((X, Y), eval_fn=metric)
    bits = controller.bit_widths()
    assert bits["flat.kernel"] < bits["sharp.kernel"]


def test_staged_quantizers_switch_on_at_their_epochs() -> None:
    controller, model = compress(params={"activations_quant_start_epoch": 1, "weights_quant_start_epoch": 2})
    controller.initialize((X, Y))
    float_out = two_branches()(X[:4]).numpy()
    seen = []
    for _ in range(3):
        controller.scheduler.epoch_step()
        seen.append({g: all(q.enabled for group, _, q in controller.quantizers() if group == g) for g in (WEIGHTS, ACTIVATIONS)})
        if controller.scheduler.current_epoch == 0:
            np.testing.assert_allclose(model(X[:4]).numpy(), float_out, rtol=1e-6)
    assert seen == [{WEIGHTS: False, ACTIVATIONS: False}, {WEIGHTS: False, ACTIVATIONS: True}, {WEIGHTS: True, ACTIVATIONS: True}]
    assert not np.allclose(model(X[:4]).numpy(), float_out)


def test_scope_overrides_on_keras_layers() -> None:
    controller, _ = compress(scope_overrides={"weights": {"flat": {"bits": 4, "mode": "asymmetric"}}})
    assert controller.weight_quantizers["flat"].bits == 4 and controller.weight_quantizers["flat"].mode == "asymmetric"
    assert controller.weight_quantizers["sharp"].bits == 8


def test_optimizer_helpers_follow_the_schedule() -> None:
    config = {
        "compression": {
            "algorithm": "quantization",
            "params": {
                "base_lr": 0.1,
                "base_wd": 0.01,
                "batch_multiplier": 2,
                "lr_poly_drop_start_epoch": 0,
                "lr_poly_drop_duration_epochs": 2,
                "disable_wd_start_epoch": 0.5,
            },
        }
    }
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4)])
    optimizer = make_optimizer(config)
    assert float(optimizer.learning_rate) == pytest.approx(0.1) and (optimizer.weight_decay, optimizer.gradient_accumulation_steps) == (
        0.01,
        2,
    )
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, callbacks=[StagedOptimizerSchedule(config)])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 * ((2 - 0.75) / 2) ** 2.1, rel=1e-5)  # the last batch: epoch 0.75
    assert not model.optimizer.weight_decay
