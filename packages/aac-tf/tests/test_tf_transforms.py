"""Weight transforms: masks that act in the forward pass, keep the weights, and fold on strip."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from aac.tf.models import copy_model
from aac.tf.testing import SubclassedModel, compile_classifier, conv_model, functional_model, sequential_model
from aac.tf.transforms import (
    Mask,
    TransformError,
    WeightTransform,
    add_transform,
    effective_value,
    fold_all,
    fold_transforms,
    has_transforms,
    remove_transforms,
    transforms_of,
)


class Scale(WeightTransform):
    """A trainable per-tensor scale (like a quantizer's range)."""

    def build(self, weight_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
        self.built = True

    def call(self, weight):
        return weight * keras.ops.cast(self.scale, weight.dtype)


def dense_output(model, name, x):
    return keras.Model(model.inputs[0], model.get_layer(name).output)(x).numpy()


def test_a_mask_acts_in_the_forward_pass_without_touching_the_weight(blobs) -> None:
    x = blobs[0][:16]
    model = functional_model()
    fc1 = model.get_layer("fc1")
    raw = fc1.kernel.numpy().copy()
    mask = add_transform(fc1, "kernel", Mask("toy", shape=(16,)))
    mask.update(np.r_[np.zeros(4), np.ones(12)])
    assert transforms_of(fc1, "kernel") == [mask]
    assert np.array_equal(fc1.kernel.numpy(), raw)  # the stored weight is intact
    assert np.allclose(effective_value(fc1, "kernel")[:, :4], 0) and np.allclose(effective_value(fc1, "kernel")[:, 4:], raw[:, 4:])
    out = dense_output(model, "fc1", x)
    assert np.allclose(out[:, :4], np.maximum(fc1.bias.numpy()[:4], 0))  # only the bias is left
    mask.update(np.ones(16))
    assert not np.allclose(dense_output(model, "fc1", x)[:, :4], np.maximum(fc1.bias.numpy()[:4], 0))  # weights come back


def test_training_with_masks_keeps_masked_columns_and_updates_batch_norm(blobs) -> None:
    x, y = blobs[0], blobs[1]
    model = compile_classifier(functional_model())
    fc2 = model.get_layer("fc2")
    mask = add_transform(fc2, "kernel", Mask("toy", shape=(16,)))
    mask.update(np.r_[np.zeros(8), np.ones(8)])
    assert any(v is mask.mask for v in model.non_trainable_variables)
    moving_mean = model.get_layer("bn2").moving_mean.numpy().copy()
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(model(x[:8], training=True))
    gradient = tape.gradient(loss, fc2.kernel)
    assert np.allclose(gradient.numpy()[:, :8], 0) and not np.allclose(gradient.numpy()[:, 8:], 0)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert not np.allclose(model.get_layer("bn2").moving_mean.numpy(), moving_mean)  # statistics still update
    masked = keras.Model(model.inputs[0], fc2.output)(x[:4]).numpy()[:, :8]
    assert np.allclose(masked, fc2.bias.numpy()[:8], atol=1e-6)


def test_transforms_work_under_xla_and_stateless_call(blobs) -> None:
    x, y = blobs[0], blobs[1]
    model = functional_model()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    mask = add_transform(model.get_layer("fc1"), "kernel", Mask("toy", shape=(16,)))
    mask.update(np.r_[np.zeros(16 - 3), np.ones(3)])
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    stateless, _ = model.stateless_call(trainable, non_trainable, x[:4])
    assert np.allclose(stateless, model(x[:4]), atol=1e-6)


def test_stacked_transforms_run_in_order_and_fold_per_owner() -> None:
    model = functional_model()
    fc1 = model.get_layer("fc1")
    raw = fc1.kernel.numpy().copy()
    mask = add_transform(fc1, "kernel", Mask("pruning", shape=(16,), initial=np.r_[np.zeros(2), np.ones(14)]))
    scale = add_transform(fc1, "kernel", Scale("quantization"))
    scale.scale.assign(0.5)
    assert transforms_of(fc1, "kernel") == [mask, scale]
    assert np.allclose(effective_value(fc1, "kernel"), raw * mask.numpy() * 0.5)
    assert any(v is scale.scale for v in model.trainable_variables)  # trainable transform variables get trained
    fold_transforms(fc1, "kernel", "nobody")  # an owner without transforms: nothing to do
    with pytest.raises(TransformError, match="runs after Mask of 'pruning'; strip that algorithm first"):
        fold_transforms(fc1, "kernel", "quantization")
    fold_transforms(fc1, "kernel", "pruning")
    assert transforms_of(fc1, "kernel") == [scale]
    assert np.allclose(fc1.kernel.numpy(), raw * mask.numpy())
    fold_all(model, "quantization")
    assert not has_transforms(model) and "call" not in fc1.__dict__
    assert np.allclose(fc1.kernel.numpy(), raw * mask.numpy() * 0.5)
    assert all(v is not scale.scale for v in model.variables)


def test_remove_brings_the_raw_weight_back_and_errors_name_the_weight() -> None:
    model = functional_model()
    fc1 = model.get_layer("fc1")
    raw = fc1.kernel.numpy().copy()
    add_transform(fc1, "kernel", Mask("toy", initial=np.zeros(raw.shape)))
    remove_transforms(fc1, "kernel", "toy")
    assert not has_transforms(model) and np.array_equal(effective_value(fc1, "kernel"), raw)
    with pytest.raises(TransformError, match="no weight variable 'gamma'.*kernel"):
        add_transform(fc1, "gamma", Mask("toy"))
    with pytest.raises(TransformError, match="does not broadcast"):
        add_transform(fc1, "kernel", Mask("toy", shape=(5,)))


@pytest.mark.parametrize("factory", [functional_model, conv_model, SubclassedModel])
def test_copy_model_copies_weights_and_transforms(factory) -> None:
    model = factory()
    shape = (4, 8, 8, 3) if factory is conv_model else (4, 8)
    sample = np.random.default_rng(0).random(shape).astype("float32")
    model(sample)
    layer = next(lr for lr in model._flatten_layers() if isinstance(lr, keras.layers.Dense))
    add_transform(layer, "kernel", Mask("toy", shape=(layer.units,), initial=np.r_[0.0, np.ones(layer.units - 1)]))
    twin = copy_model(model)
    assert twin is not model and has_transforms(twin)
    assert np.allclose(twin(sample), model(sample), atol=1e-6)
    twin_layer = next(lr for lr in twin._flatten_layers() if isinstance(lr, keras.layers.Dense))
    assert twin_layer.kernel is not layer.kernel
    fold_all(twin, "toy")
    assert not has_transforms(twin) and has_transforms(model)
    assert np.allclose(twin(sample), model(sample), atol=1e-6)


def test_copy_model_can_shrink_a_functional_model() -> None:
    model = sequential_model()
    sample = np.random.default_rng(0).random((3, 8)).astype("float32")
    keep = np.arange(8)

    def edit_config(path, layer, config):
        return {**config, "units": 8} if path == "fc1" else config

    def edit_weights(path, layer):
        if path == "fc1":
            return [layer.kernel.numpy()[:, keep], layer.bias.numpy()[keep]]
        if path == "fc2":
            return [layer.kernel.numpy()[keep, :], layer.bias.numpy()]
        return None

    small = copy_model(model, edit_config=edit_config, edit_weights=edit_weights)
    assert tuple(small.get_layer("fc1").kernel.shape) == (8, 8)
    assert small.count_params() < model.count_params()
    hidden = keras.Model(model.inputs[0], model.get_layer("fc2").output)
    small_hidden = keras.Model(small.inputs[0], small.get_layer("fc2").output)
    mask = np.r_[np.ones(8), np.zeros(8)]  # the same network with fc1's last 8 channels masked
    add_transform(model.get_layer("fc1"), "kernel", Mask("toy", shape=(16,), initial=mask))
    add_transform(model.get_layer("fc1"), "bias", Mask("toy", shape=(16,), initial=mask))
    assert np.allclose(small_hidden(sample), hidden(sample), atol=1e-5)
