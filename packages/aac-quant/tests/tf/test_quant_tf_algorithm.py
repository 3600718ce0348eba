"""quantization on Keras models: placement, the grid, range init, training, strip equivalence, export, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from aac.core import create_compressed_model
from aac.quant.grid import fake_quantize
from aac.quant.tf.algorithm import TFQuantization
from aac.quant.tf.quantizers import QuantizeDequantize
from aac.tf import CompressionCallback, has_transforms
from aac.tf.backend import TFBackend
from aac.tf.export import ExportError
from aac.tf.models import copy_model, iter_layers
from aac.tf.testing import (
    PlainSubclassedNet,
    SubclassedModel,
    compile_classifier,
    conv_model,
    functional_model,
    make_data,
    raw_ops_net,
    sequential_model,
)

STYLES = {"sequential": sequential_model, "functional": functional_model, "subclassed": SubclassedModel}
INIT = {"range": {"num_init_samples": 64}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 64}}
KEYS = {
    "weight_quantizers",
    "activation_quantizers",
    "quantized_layers_ratio",
    "initialized",
    "enabled_ratio",
    "bit_complexity_ratio",
    "weight_size_ratio",
}


def compress(model: Any, shape: tuple[int, ...] = (1, 8), **section: Any) -> tuple[TFQuantization, Any]:
    config = {"input_info": {"sample_size": list(shape)}, "compression": {"algorithm": "quantization", "initializer": INIT, **section}}
    controller, compressed = create_compressed_model(model, config)
    assert isinstance(controller, TFQuantization) and compressed is model
    return controller, model


def _images(n: int = 64) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize("style", list(STYLES))
def test_three_styles_train_strip_and_export(style: str, tmp_path: Path) -> None:
    x, y = make_data(96)
    controller, model = compress(STYLES[style]())
    assert len(controller.weight_quantizers) == 3 and len(controller.activation_sites) == 3
    controller.initialize((x, y))
    scalars = controller.statistics()["quantization"].scalars
    assert set(scalars) == KEYS and scalars["initialized"] == 1.0 and scalars["quantized_layers_ratio"] == 1.0
    scale = controller.weight_quantizers["fc1"].scale.numpy().copy()
    compile_classifier(model).fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[CompressionCallback(controller)])
    assert not np.allclose(controller.weight_quantizers["fc1"].scale.numpy(), scale)  # ranges are learned
    expected = np.asarray(model(x, training=False))
    stripped = controller.strip()
    assert not has_transforms(stripped) and has_transforms(model)
    np.testing.assert_allclose(stripped(x, training=False), expected, atol=1e-5)
    # stored weights lie on their grids
    layers = dict(iter_layers(stripped))
    for path, quantizer in controller.weight_quantizers.items():
        step, zero, count = quantizer.step_and_zero_numpy()
        kernel = layers[path].kernel.numpy()
        np.testing.assert_allclose(kernel, fake_quantize(kernel, step, zero, count), atol=1e-6)
    saved = controller.export_model(tmp_path / "saved")
    served = tf.saved_model.load(str(saved)).signatures["serving_default"]
    np.testing.assert_allclose(next(iter(served(tf.constant(x)).values())), expected, atol=1e-5)
    if style == "subclassed":
        with pytest.raises(ExportError, match="SavedModel"):
            controller.export_model(tmp_path / "model.keras")
    else:
        assert sum(isinstance(layer, QuantizeDequantize) for layer in stripped.layers) == 3
        loaded = keras.saving.load_model(controller.export_model(tmp_path / "model.keras"), compile=False)
        np.testing.assert_allclose(loaded(x, training=False), expected, atol=1e-5)


@pytest.mark.parametrize("make", [raw_ops_net, PlainSubclassedNet], ids=["raw-ops", "plain-subclassed"])
def test_keras_ops_graphs_and_plain_subclassed_models_strip(make: Any, tmp_path: Path) -> None:
    """Issue 11: operation nodes (x + 3.0, keras.ops) and a subclassed model without names or get_config; the strip
    finds each quantized layer in the copy by the user's layer it copies, whatever the copy's layers are called."""
    x = _images(32)
    controller, model = compress(make(), (1, 8, 8, 3))
    controller.initialize(x)
    expected = np.asarray(model(x, training=False))

    def assert_equivalent(outputs: Any) -> None:
        # the QDQ layers compute their step in NumPy, the fake quantizers in TensorFlow: a value on a rounding tie may
        # land one step apart, which moves the logits of that one sample by about a step
        matching = np.isclose(np.asarray(outputs), expected, atol=1e-5).all(axis=1)
        assert matching.mean() >= 0.9 and np.abs(np.asarray(outputs) - expected).max() < 0.01

    assert_equivalent(controller.strip()(x, training=False))
    renamed = copy_model(model)
    for _, layer in iter_layers(renamed):
        layer.name = f"renamed_{layer.name}"
    assert_equivalent(controller.strip_model(renamed)(x, training=False))
    served = tf.saved_model.load(str(controller.export_model(tmp_path / "saved"))).signatures["serving_default"]
    assert_equivalent(next(iter(served(tf.constant(x)).values())))


def test_fake_quantization_matches_the_neutral_grid_and_statistics_decide_the_sign() -> None:
    x, y = make_data(64)
    controller, model = compress(sequential_model())
    controller.initialize(x)
    first, after_relu = controller.activation_sites[0].quantizer, controller.activation_sites[1].quantizer
    assert first.signed and not after_relu.signed  # features are signed; fc2 reads a ReLU
    for quantizer in (first, after_relu, controller.weight_quantizers["fc2"]):
        step, zero, count = quantizer.step_and_zero_numpy()
        values = np.linspace(-5, 5, 1001, dtype="float32")
        np.testing.assert_allclose(quantizer.fake_quantize(values), fake_quantize(values, step, zero, count), atol=1e-6)


def test_per_channel_asymmetric_conv_model(tmp_path: Path) -> None:
    x = _images()
    controller, model = compress(
        conv_model(), (1, 8, 8, 3), weights={"per_channel": True}, activations={"mode": "asymmetric", "per_channel": True}
    )
    controller.initialize(x)
    assert all(q.channels is not None for _, _, q in controller.quantizers())
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(controller.strip()(x, training=False), expected, atol=1e-5)
    loaded = keras.saving.load_model(controller.export_model(tmp_path / "conv.keras"), compile=False)
    np.testing.assert_allclose(loaded(x, training=False), expected, atol=1e-5)


def test_scopes_and_inputs() -> None:
    controller, _ = compress(sequential_model(), ignored_scopes=["logits"], quantize_inputs=False)
    assert list(controller.weight_quantizers) == ["fc1", "fc2"]
    assert [s.consumers for s in controller.activation_sites] == [["fc2"]]  # fc1 reads the model input
    assert controller.statistics()["quantization"].scalars["quantized_layers_ratio"] == pytest.approx(2 / 3)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    x, y = make_data(64)
    controller, model = compress(functional_model())
    controller.initialize(x)
    compile_classifier(model).fit(x, y, epochs=1, batch_size=32, verbose=0)
    backend = TFBackend()
    backend.save_checkpoint(tmp_path / "q.npz", {"model": backend.model_state(model), "compression_state": controller.get_state()})
    payload = TFBackend().load_checkpoint(tmp_path / "q.npz")
    restored_controller, restored = compress(functional_model())  # never initialized: everything comes from the checkpoint
    restored_controller.load_state(payload["compression_state"])
    TFBackend().load_model_state(restored, payload["model"])
    assert all(q.is_initialized for _, _, q in restored_controller.quantizers())
    assert [q.signed for _, _, q in restored_controller.quantizers()] == [q.signed for _, _, q in controller.quantizers()]
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-6)
    np.testing.assert_allclose(restored_controller.strip()(x), controller.strip()(x), atol=1e-6)
