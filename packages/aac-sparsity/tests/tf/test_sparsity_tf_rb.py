"""rb_sparsity on Keras models: trainable logits, the loss inside model.fit, getter = setter, freeze, strip, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from aac.core import create_compressed_model
from aac.sparsity.rb import LOSS_SCALE
from aac.sparsity.tf.rb import RBMask, TFRBSparsity
from aac.tf import CompressionCallback, has_transforms
from aac.tf.backend import TFBackend
from aac.tf.models import iter_layers
from aac.tf.testing import compile_classifier, functional_model, make_data, sequential_model


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


def compress(
    model: Any = None, sparsity_init: float | None = None, section: dict[str, Any] | None = None, **params: Any
) -> tuple[TFRBSparsity, Any]:
    body: dict[str, Any] = {"algorithm": "rb_sparsity", "params": params, **(section or {})}
    if sparsity_init is not None:
        body["sparsity_init"] = sparsity_init
    model = model if model is not None else sequential_model()
    controller, compressed = create_compressed_model(model, {"input_info": {"sample_size": [1, 8]}, "compression": body})
    assert isinstance(controller, TFRBSparsity) and compressed is model
    return controller, model


def spread_logits(controller: TFRBSparsity) -> None:
    """Logits start equal, so Adam moves them in lockstep and they cross 0 together; spread them first
    (over a long run the task loss does that), as the torch test does."""
    rng = np.random.default_rng(0)
    for layer in controller.layers:
        mask = layer.transform
        mask.logits.assign((rng.normal(2.0, 1.0, size=mask.logits.shape) / mask.multiplier).astype("float32"))


def fit(controller: TFRBSparsity, model: Any, epochs: int = 6) -> None:
    x, y = make_data(256)
    compile_classifier(model, learning_rate=0.01)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[CompressionCallback(controller)])


def test_logits_are_trainable_and_training_samples_noise() -> None:
    controller, model = compress()
    assert controller.settings.schedule == "exponential"
    masks = [layer.transform for layer in controller.layers]
    assert all(isinstance(mask, RBMask) for mask in masks)
    trainable = {id(v) for v in model.trainable_variables}
    assert all(id(mask.logits) in trainable and id(mask.keep) not in trainable for mask in masks)
    assert float(keras.ops.mean(keras.ops.sigmoid(masks[0].values()))) == pytest.approx(0.99, abs=1e-6)
    x, _ = make_data(16)
    evaluation = np.asarray(model(x, training=False))
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), evaluation)  # deterministic
    outputs = [np.asarray(model(x, training=True)) for _ in range(5)]  # ~1% of the weights dropped at random
    assert any(not np.allclose(out, evaluation) for out in outputs)


def test_loss_value_follows_the_formula() -> None:
    controller, _ = compress(sparsity_init=0.3)
    assert float(controller.loss()) == pytest.approx(((1.0 - 0.7) / LOSS_SCALE) ** 2, rel=1e-5)


def test_the_loss_drives_the_measured_sparsity_in_model_fit() -> None:
    controller, model = compress(sparsity_init=0.5, section={"compression_lr_multiplier": 20}, sparsity_target=0.5)
    assert controller.measured_level() == 0.0
    spread_logits(controller)
    fit(controller, model)
    assert controller.compression_rate == 0.5
    assert controller.measured_level() == pytest.approx(0.5, abs=0.05)
    assert float(controller.loss()) < ((0.5 - 0.0) / LOSS_SCALE) ** 2 / 10
    scalars = controller.statistics()["rb_sparsity"].scalars
    assert scalars["sparsified_weights_sparsity"] == pytest.approx(controller.measured_level())
    assert scalars["mean_keep_probability"] < 0.99


@pytest.mark.parametrize("level", [0.0, 0.25, 0.9])
def test_getter_and_setter_agree_and_reach_the_traced_loss(level: float) -> None:
    controller, _ = compress()
    controller.compression_rate = level
    assert controller.compression_rate == level
    assert all(float(layer.transform.level.numpy()) == pytest.approx(level) for layer in controller.layers)
    assert float(controller.loss()) == pytest.approx(((1.0 - (1.0 - level)) / LOSS_SCALE) ** 2, rel=1e-5)


def test_local_mode_targets_each_layer() -> None:
    controller, _ = compress(sparsity_level_setting_mode="local")
    controller.set_sparsity_level(0.5, "fc1")
    sizes = {layer.name: layer.numel for layer in controller.layers}
    assert controller.compression_rate == pytest.approx(0.5 * sizes["fc1"] / sum(sizes.values()))
    expected = np.mean([(((1 - 0.5) if layer.name == "fc1" else 0.0) / LOSS_SCALE) ** 2 for layer in controller.layers])
    assert float(controller.loss()) == pytest.approx(expected, rel=1e-5)


def test_freeze_keeps_the_pattern_in_fit_and_writing_the_rate_unfreezes() -> None:
    controller, model = compress(sparsity_init=0.5, section={"compression_lr_multiplier": 20}, sparsity_target=0.5)
    fit(controller, model, epochs=3)
    controller.freeze()
    pattern = [layer.transform.keep_mask().copy() for layer in controller.layers]
    assert float(controller.loss()) == 0.0
    x, _ = make_data(16)
    assert np.allclose(model(x, training=True), model(x, training=False))  # no noise once frozen
    fit(controller, model, epochs=1)  # the (already traced) step reads the frozen flag
    for layer, keep in zip(controller.layers, pattern, strict=True):
        np.testing.assert_array_equal(layer.transform.keep_mask(), keep)
    controller.compression_rate = 0.6
    assert not controller.frozen and float(controller.loss()) > 0.0
    for layer, keep in zip(controller.layers, pattern, strict=True):
        np.testing.assert_array_equal(layer.transform.keep_mask(), keep)  # logits aligned with the frozen pattern


def test_strip_folds_the_masks() -> None:
    controller, model = compress(functional_model(), sparsity_init=0.5, section={"compression_lr_multiplier": 20}, sparsity_target=0.5)
    fit(controller, model, epochs=3)
    x, _ = make_data(32)
    stripped = controller.strip()
    assert not has_transforms(stripped) and has_transforms(model)
    np.testing.assert_allclose(stripped(x, training=False), model(x, training=False), atol=1e-5)
    layers = dict(iter_layers(stripped))
    zeros = sum(int(np.sum(layers[layer.name].kernel.numpy() == 0)) for layer in controller.layers)
    assert zeros == round(controller.measured_level() * sum(layer.numel for layer in controller.layers))


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    x, _ = make_data(64)
    options: dict[str, Any] = {"sparsity_init": 0.5, "section": {"compression_lr_multiplier": 20}, "sparsity_target": 0.5}
    controller, model = compress(functional_model(), **options)
    fit(controller, model, epochs=2)
    controller.freeze()
    backend = TFBackend()
    backend.save_checkpoint(
        tmp_path / "run.npz",
        {
            "model": backend.model_state(model),
            "compression_state": controller.get_state(),
            "optimizer": backend.optimizer_state(model.optimizer),
        },
    )

    payload = TFBackend().load_checkpoint(tmp_path / "run.npz")
    restored_controller, restored = compress(functional_model(), **options)
    restored_controller.load_state(payload["compression_state"])
    compile_classifier(restored, learning_rate=0.01)
    fresh = TFBackend()
    fresh.bind(restored)
    fresh.load_model_state(restored, payload["model"])
    fresh.load_optimizer_state(restored.optimizer, payload["optimizer"])
    assert restored_controller.compression_rate == controller.compression_rate and restored_controller.frozen
    assert restored_controller.measured_level() == controller.measured_level()
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-6)
    np.testing.assert_allclose(restored_controller.strip()(x), controller.strip()(x), atol=1e-6)
