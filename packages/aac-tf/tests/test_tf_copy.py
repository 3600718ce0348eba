"""copy_model for every model style (issue 11): functional graphs with keras.ops calls and operators, and
subclassed models without layer names, get_config or constructor arguments - copied, and rebuilt smaller."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from aac.tf.models import ModelTraceError, copy_model, layer_paths, origin, rebuildable_layers
from aac.tf.testing import PlainSubclassedNet, raw_ops_net
from aac.tf.transforms import Mask, add_transform, has_transforms, transforms_of


def _sample(batch: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(batch, 8, 8, 3)).astype("float32")


def test_a_functional_model_with_keras_ops_and_operators_is_copied() -> None:
    model = raw_ops_net()
    add_transform(model.get_layer("expand"), "kernel", Mask("test", shape=(1, 1, 1, 32), initial=np.arange(32) % 2))
    x = _sample()
    twin = copy_model(model)
    np.testing.assert_allclose(twin(x), model(x), atol=1e-6)
    assert {type(op).__name__ for op in twin.operations} >= {"Add", "Multiply", "Relu6", "Mean"}
    assert [t.owner for t in transforms_of(twin.get_layer("expand"), "kernel")] == ["test"]
    twin.get_layer("fc").kernel.assign(np.zeros_like(twin.get_layer("fc").kernel))
    assert not np.allclose(twin(x), model(x))  # new variables
    assert origin(twin.get_layer("fc")) is model.get_layer("fc")


def test_a_plain_subclassed_model_is_copied_without_get_config() -> None:
    model = PlainSubclassedNet()
    x = _sample()
    model(x)
    with pytest.raises(TypeError):  # what the copy cannot rely on
        PlainSubclassedNet.from_config(model.get_config())
    plain = copy_model(model)
    assert type(plain) is PlainSubclassedNet and plain.name == model.name
    assert list(layer_paths(plain)) == list(layer_paths(model))  # the auto-generated names are the original ones
    assert [v.path for v in plain.weights] == [v.path for v in model.weights]
    add_transform(model.conv3, "kernel", Mask("test", shape=(1, 1, 1, 32), initial=np.arange(32) % 2))
    twin = copy_model(model)
    np.testing.assert_allclose(twin(x), model(x), atol=1e-6)
    assert has_transforms(twin) and origin(twin.conv3) is model.conv3 and origin(copy_model(twin).conv3) is model.conv3
    twin.fc.kernel.assign(np.zeros_like(twin.fc.kernel))
    assert not np.allclose(twin(x), model(x))


def test_a_subclassed_model_is_rebuilt_smaller() -> None:
    model = PlainSubclassedNet()
    x = _sample()
    model(x)
    assert set(rebuildable_layers(model).values()) == {None}
    keep = np.arange(0, 32, 2)

    def edit_config(path, layer, config):
        return {**config, "filters": 16} if layer is model.conv3 else config

    def edit_weights(path, layer):
        if layer is model.conv3:
            return [model.conv3.kernel.numpy()[..., keep], model.conv3.bias.numpy()[keep]]
        if layer is model.fc:
            return [model.fc.kernel.numpy()[keep], model.fc.bias.numpy()]
        return None

    small = copy_model(model, edit_config=edit_config, edit_weights=edit_weights)
    assert small.conv3.filters == 16 and tuple(small.fc.kernel.shape) == (16, 10)
    dropped = ~np.isin(np.arange(32), keep)
    model.conv3.kernel.assign(np.where(dropped, 0.0, model.conv3.kernel.numpy()))  # the original with the dropped filters zeroed
    model.conv3.bias.assign(np.where(dropped, 0.0, model.conv3.bias.numpy()))
    np.testing.assert_allclose(small(x), model(x), atol=1e-5)


class _Stacked(keras.Model):
    """Layers passed in as objects: Keras cannot record them as constructor arguments."""

    def __init__(self, layers):
        super().__init__()
        self.stack = layers

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return x


class _Lazy(keras.Model):
    """One layer built by the constructor, one created only when the model is built."""

    def __init__(self):
        super().__init__()
        self.first = keras.layers.Dense(8)
        self.first.build((None, 4))

    def build(self, input_shape):
        self.second = keras.layers.Dense(3)

    def call(self, x):
        return self.second(self.first(x))


def test_what_cannot_be_copied_or_rebuilt_says_why() -> None:
    stacked = _Stacked([keras.layers.Dense(4), keras.layers.Dense(2)])
    stacked(np.zeros((1, 3), "float32"))
    with pytest.raises(
        ModelTraceError,
        match=r"cannot make a copy of the model _Stacked: .*Keras did not record its constructor "
        r"arguments.*Give the class a get_config\(\)",
    ):
        copy_model(stacked)
    (reason,) = set(rebuildable_layers(stacked).values())  # every layer, for the same reason
    assert "Keras did not record its constructor arguments" in reason
    lazy = _Lazy()
    lazy(np.zeros((1, 4), "float32"))
    reasons = rebuildable_layers(lazy)
    assert (
        reasons[lazy.first.name]
        == f"'{lazy.first.name}' is built by the constructor of the subclassed model _Lazy, so aac cannot rebuild it smaller"
    )
    assert reasons[lazy.second.name] == (
        f"'{lazy.second.name}' is created when the subclassed model _Lazy is built or called, not by its "
        "constructor, so aac cannot rebuild it smaller"
    )
    twin = copy_model(lazy)  # a plain copy still works
    np.testing.assert_allclose(twin(np.ones((2, 4), "float32")), lazy(np.ones((2, 4), "float32")), atol=1e-6)


def test_keras_composite_layers_are_copied_with_their_inner_weights() -> None:
    inputs = keras.Input((5, 4))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Bidirectional(keras.layers.LSTM(3))(inputs)))
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    np.testing.assert_allclose(copy_model(model)(x), model(x), atol=1e-6)
