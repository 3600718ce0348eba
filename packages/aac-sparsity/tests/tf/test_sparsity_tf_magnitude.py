"""magnitude_sparsity and const_sparsity on Keras models: levels (getter = setter), schedule, freeze, strip,
checkpoints, export - on Sequential, functional and subclassed models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from aac.core import CompressionStage, create_compressed_model
from aac.core.errors import AacError, CompressionRateError
from aac.sparsity.levels import importance, keep_mask
from aac.sparsity.tf.const import TFConstSparsity
from aac.sparsity.tf.magnitude import TFMagnitudeSparsity
from aac.tf import CompressionCallback, has_transforms
from aac.tf.backend import TFBackend
from aac.tf.models import iter_layers
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
#: the statistics magnitude sparsity reports on every framework
MAGNITUDE_KEYS = {
    "sparsified_weights_sparsity",
    "model_sparsity",
    "sparsified_weights",
    "model_parameters",
    "compression_rate",
    "target_sparsity_level",
    "frozen",
    "scheduled_sparsity_level",
    "threshold",
}


def compress(
    model: Any = None,
    algorithm: str = "magnitude_sparsity",
    sparsity_init: float | None = None,
    section: dict[str, Any] | None = None,
    shape: tuple[int, ...] = (1, 8),
    **params: Any,
) -> tuple[Any, Any]:
    model = model if model is not None else sequential_model()
    body: dict[str, Any] = {"algorithm": algorithm, **(section or {})}
    if params:
        body["params"] = params
    if sparsity_init is not None:
        body["sparsity_init"] = sparsity_init
    controller, compressed = create_compressed_model(model, {"input_info": {"sample_size": list(shape)}, "compression": body})
    assert compressed is model
    return controller, model


@pytest.mark.parametrize("style", list(STYLES))
def test_three_model_styles_strip_to_equivalent_plain_models(style: str) -> None:
    model = STYLES[style]()
    controller, model = compress(model)
    assert isinstance(controller, TFMagnitudeSparsity)
    assert [layer.name for layer in controller.layers][::2] == ["fc1", "logits"]  # fc2 or block/inner in the middle
    controller.compression_rate = 0.6
    x, _ = make_data(32)
    stripped = controller.strip()
    assert not has_transforms(stripped) and has_transforms(model)  # the live model keeps training
    np.testing.assert_allclose(stripped(x, training=False), model(x, training=False), atol=1e-6)
    layers = dict(iter_layers(stripped))
    zeros = sum(int(np.sum(layers[layer.name].kernel.numpy() == 0)) for layer in controller.layers)
    assert zeros == round(0.6 * sum(layer.numel for layer in controller.layers))  # folded: real zeros


@pytest.mark.parametrize("make", [raw_ops_net, PlainSubclassedNet], ids=["raw-ops", "plain-subclassed"])
def test_keras_ops_graphs_and_plain_subclassed_models_strip(make: Any, tmp_path: Path) -> None:
    """Issue 11: operation nodes (x + 3.0, keras.ops) and a subclassed model without names or get_config."""
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    controller, model = compress(make(), shape=(1, 8, 8, 3))
    controller.compression_rate = 0.5
    stripped = controller.strip()
    assert type(stripped) is type(model) and not has_transforms(stripped)
    np.testing.assert_allclose(stripped(x, training=False), model(x, training=False), atol=1e-5)
    stripped_layers = dict(iter_layers(stripped))
    zeros = sum(int(np.sum(stripped_layers[layer.name].kernel.numpy() == 0)) for layer in controller.layers)
    assert zeros == round(0.5 * sum(layer.numel for layer in controller.layers))
    served = tf.saved_model.load(str(controller.export_model(tmp_path / "saved")))
    np.testing.assert_allclose(served.serve(x), model(x, training=False), atol=1e-5)
    if make is raw_ops_net:  # the operations survive a .keras round trip (a class without get_config cannot be loaded back)
        loaded = keras.saving.load_model(controller.export_model(tmp_path / "model.keras"))
        np.testing.assert_allclose(loaded(x), model(x, training=False), atol=1e-5)


def test_masks_follow_the_neutral_selection_rule() -> None:
    controller, _ = compress(section={"params": {"weight_importance": "abs"}})
    controller.compression_rate = 0.3
    scores = np.concatenate([importance(layer.weight.numpy(), "abs").ravel() for layer in controller.layers])
    expected, _ = keep_mask(scores, 0.3)
    actual = np.concatenate([layer.transform.numpy().ravel() for layer in controller.layers]) > 0
    np.testing.assert_array_equal(actual, expected)
    assert set(controller.statistics()["magnitude_sparsity"].scalars) == MAGNITUDE_KEYS


def test_schedule_drives_the_masks_inside_model_fit() -> None:
    controller, model = compress(
        sparsity_init=0.1,
        sparsity_target=0.5,
        sparsity_target_epoch=2,
        sparsity_freeze_epoch=3,
        schedule="multistep",
        multistep_steps=[1, 2],
        multistep_sparsity_levels=[0.1, 0.3, 0.5],
    )
    compile_classifier(model)
    x, y = make_data(64)
    seen: list[tuple[float, float]] = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seen.append((controller.compression_rate, controller.measured_level()))

    model.fit(x, y, epochs=4, batch_size=32, verbose=0, callbacks=[CompressionCallback(controller), Watch()])
    assert [round(r, 6) for r, _ in seen] == [0.1, 0.3, 0.5, 0.5]
    assert all(abs(r - m) < 0.01 for r, m in seen)
    assert controller.frozen and controller.compression_stage() is CompressionStage.FULLY_COMPRESSED
    # the traced step reads the mask variables: masked weights get no update and stay masked
    stripped = controller.strip()
    np.testing.assert_allclose(stripped(x, training=False), model(x, training=False), atol=1e-5)


def test_polynomial_schedule_per_step() -> None:
    controller, model = compress(
        sparsity_target=0.5, sparsity_target_epoch=1, sparsity_freeze_epoch=2, update_per_optimizer_step=True, steps_per_epoch=4, power=1
    )
    levels = []
    controller.scheduler.epoch_step()
    for _ in range(4):
        controller.scheduler.step()
        levels.append(round(controller.compression_rate, 6))
    assert levels == [0.0, 0.125, 0.25, 0.375]
    assert controller.measured_level() == pytest.approx(0.375, abs=0.01)


def test_local_mode_and_per_layer_levels() -> None:
    controller, _ = compress(sparsity_level_setting_mode="local")
    controller.set_sparsity_level(0.5, "fc1")
    sizes = {layer.name: layer.numel for layer in controller.layers}
    assert controller.compression_rate == pytest.approx(0.5 * sizes["fc1"] / sum(sizes.values()))
    assert controller.compression_stage() is CompressionStage.FULLY_COMPRESSED
    with pytest.raises(AacError, match="not a sparsified layer"):
        controller.set_sparsity_level(0.5, "nope")


def test_scopes_and_no_layer_error() -> None:
    controller, _ = compress(section={"ignored_scopes": ["logits"]})
    assert [layer.name for layer in controller.layers] == ["fc1", "fc2"]
    with pytest.raises(AacError, match="found no layer to sparsify"):
        compress(section={"target_scopes": ["{re}^fc"], "ignored_scopes": ["fc1", "fc2"]})


def test_conv_model_and_export(tmp_path: Path) -> None:
    controller, model = compress(conv_model(), shape=(1, 8, 8, 3))
    controller.compression_rate = 0.5
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    expected = model(x, training=False)
    path = controller.export_model(tmp_path / "sparse.keras")
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(loaded(x, training=False), expected, atol=1e-5)
    saved = controller.export_model(tmp_path / "sparse_saved")
    import tensorflow as tf

    served = tf.saved_model.load(str(saved)).signatures["serving_default"]
    np.testing.assert_allclose(next(iter(served(tf.constant(x)).values())), expected, atol=1e-5)


def test_checkpoint_round_trip_and_const_sparsity_keeps_the_pattern(tmp_path: Path) -> None:
    x, y = make_data(64)
    backend = TFBackend()
    controller, model = compress(functional_model(), sparsity_init=0.1, sparsity_target=0.6, sparsity_target_epoch=2)
    compile_classifier(model)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[CompressionCallback(controller)])
    backend.save_checkpoint(
        tmp_path / "run.npz",
        {
            "model": backend.model_state(model),
            "compression_state": controller.get_state(),
            "optimizer": backend.optimizer_state(model.optimizer),
        },
    )

    payload = TFBackend().load_checkpoint(tmp_path / "run.npz")
    restored_controller, restored = compress(functional_model(), sparsity_init=0.1, sparsity_target=0.6, sparsity_target_epoch=2)
    restored_controller.load_state(payload["compression_state"])
    compile_classifier(restored)
    fresh = TFBackend()
    fresh.bind(restored)
    fresh.load_model_state(restored, payload["model"])
    fresh.load_optimizer_state(restored.optimizer, payload["optimizer"])
    assert restored_controller.compression_rate == controller.compression_rate
    assert restored_controller.scheduler.current_epoch == controller.scheduler.current_epoch
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-6)
    np.testing.assert_allclose(restored_controller.strip()(x), controller.strip()(x), atol=1e-6)

    # the same checkpoint loads into const_sparsity (same mask variables): the pattern is kept while fine-tuning
    const, constant = compress(functional_model(), algorithm="const_sparsity")
    assert isinstance(const, TFConstSparsity) and not const.adaptive
    TFBackend().load_model_state(constant, payload["model"])
    assert const.measured_level() == pytest.approx(controller.measured_level())
    compile_classifier(constant).fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[CompressionCallback(const)])
    assert const.measured_level() == pytest.approx(controller.measured_level())
    assert const.statistics()["const_sparsity"].scalars["sparsity_level"] == pytest.approx(controller.measured_level())


def test_const_sparsity_starts_from_the_zeros_of_a_stripped_model() -> None:
    controller, _ = compress()
    controller.compression_rate = 0.4
    stripped = controller.strip()
    const, _ = compress(stripped, algorithm="const_sparsity")
    assert const.measured_level() == pytest.approx(0.4, abs=0.01)
    with pytest.raises(CompressionRateError):
        const.compression_rate = 0.5
