"""Physical removal on Keras: the stripped model computes what the masked model computes, with fewer parameters;
exported to .keras and SavedModel, reloaded and compared."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aac.core import create_compressed_model
from aac.pruning.tf.strip import parameter_count
from aac.tf.export import ExportError
from aac.tf.models import ModelTraceError
from aac.tf.testing import (
    PlainSubclassedNet,
    ResidualBlock,
    densenet_like,
    digits_net,
    grouped_conv_net,
    mobilenet_like,
    raw_ops_net,
    resnet_like,
)
from aac.tf.transforms import Mask, WeightTransform, add_transform, has_transforms, transforms_of


def _separable(size=8, channels=3, classes=10):
    """SeparableConv2D (depthwise, then pointwise with depth_multiplier entries per input channel), a
    transposed convolution, Reshape to an explicit size and GroupNormalization with one channel per group."""
    inputs = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.SeparableConv2D(16, 3, padding="same", depth_multiplier=2, name="separable")(x)
    x = keras.layers.GroupNormalization(groups=16, name="gn")(x)
    x = keras.layers.Conv2DTranspose(8, 3, padding="same", activation="relu", name="up")(x)
    x = keras.layers.Reshape((size * size * 8,), name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc")(x), name="separable_net")


def _sequential():
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.ReLU(name="relu1"),
            keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(16, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="fc2"),
        ],
        name="sequential_cnn",
    )


def _plain_subclassed():
    model = PlainSubclassedNet()
    model(np.zeros((1, 8, 8, 3), "float32"))
    return model


CASES = {
    "resnet": (lambda: resnet_like(blocks=2), (1, 8, 8, 3), {"prune_downsample_convs": True}),
    "resnet-first-conv-global": (
        resnet_like,
        (1, 8, 8, 3),
        {"prune_downsample_convs": True, "prune_first_conv": True, "all_weights": True, "filters_multiple_of": 2},
    ),
    "mobilenet": (mobilenet_like, (1, 8, 8, 3), {"prune_first_conv": True, "prune_downsample_convs": True}),
    "densenet": (densenet_like, (1, 8, 8, 3), {"filters_multiple_of": 2}),
    "grouped": (grouped_conv_net, (1, 8, 8, 3), {"filter_importance": "geometric_median"}),
    "separable": (_separable, (1, 8, 8, 3), {"prune_first_conv": True, "filters_multiple_of": 4}),
    "sequential": (_sequential, (1, 8, 8, 3), {"prune_first_conv": True, "prune_downsample_convs": True, "filters_multiple_of": 4}),
    "digits": (digits_net, (1, 8, 8, 1), {"prune_downsample_convs": True, "filters_multiple_of": 4}),
    # issue 11: keras.ops calls and operators between layers; a subclassed model without names or get_config
    "raw-ops": (raw_ops_net, (1, 8, 8, 3), {"prune_first_conv": True}),
    "plain-subclassed": (_plain_subclassed, (1, 8, 8, 3), {"prune_first_conv": True, "prune_downsample_convs": True}),
}


def _randomise_norms(model):
    """Non-trivial batch-norm statistics, so that a wrongly cut norm shows in the outputs."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.uniform(-1, 1, shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2, shape))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, shape))
            if layer.center:
                layer.beta.assign(rng.uniform(-0.5, 0.5, shape))
    return model


def _sample(shape, batch=5):
    return np.random.default_rng(1).normal(size=(batch, *shape[1:])).astype("float32")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("rate", [0.3, 0.6])
def test_stripped_model_matches_the_masked_model(compress_tf, case, rate):
    make, shape, params = CASES[case]
    model = _randomise_norms(make())
    x = _sample(shape)
    unmasked = model(x, training=False).numpy()
    controller = compress_tf(model, shape, **params)
    controller.compression_rate = min(rate, controller.maximal_compression_rate)
    masked = model(x, training=False).numpy()
    assert not np.allclose(masked, unmasked, atol=1e-4)  # the masks do act
    stripped = controller.strip()
    np.testing.assert_allclose(stripped(x, training=False), masked, atol=1e-4, rtol=1e-4)
    kept = parameter_count(stripped)
    assert kept < parameter_count(model) and stripped.count_params() < model.count_params()
    model_table = controller.statistics()["filter_pruning"].tables[0]
    assert dict((row[0], row[2]) for row in model_table.rows)["Parameters"] == kept
    assert not has_transforms(stripped) and has_transforms(model)
    assert [type(a) for a in stripped.layers] == [type(a) for a in model.layers]


def _application_idioms():
    """What keras.applications build with: conv + BatchNormalization(scale=False) and a norm with neither scale nor offset
    (InceptionV3), SeparableConv2D with a strided 1x1 residual (Xception), a squeeze-excitation block with
    Reshape((1, 1, C)) (EfficientNet) and Dense layers on an image (ConvNeXt)."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, use_bias=False, name="stem")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(scale=False, name="stem_bn")(x))
    x = keras.layers.Conv2D(24, 3, padding="same", use_bias=False, name="conv")(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(scale=False, center=False, name="conv_bn")(x))
    residual = keras.layers.BatchNormalization(name="res_bn")(keras.layers.Conv2D(32, 1, strides=2, use_bias=False, name="res")(x))
    y = keras.layers.SeparableConv2D(32, 3, padding="same", use_bias=False, name="sep1")(x)
    y = keras.layers.ReLU()(keras.layers.BatchNormalization(name="sep1_bn")(y))
    y = keras.layers.SeparableConv2D(32, 3, padding="same", activation="relu", name="sep2")(y)
    y = keras.layers.MaxPooling2D(3, strides=2, padding="same")(keras.layers.BatchNormalization(name="sep2_bn")(y))
    x = keras.layers.Add()([y, residual])
    se = keras.layers.Reshape((1, 1, 32), name="se_reshape")(keras.layers.GlobalAveragePooling2D(name="se_squeeze")(x))
    se = keras.layers.Conv2D(8, 1, activation="swish", name="se_reduce")(se)
    se = keras.layers.Conv2D(32, 1, activation="sigmoid", name="se_expand")(se)
    x = keras.layers.Multiply()([x, se])
    x = keras.layers.Dense(48, activation="gelu", name="pw1")(x)
    x = keras.layers.Dense(32, name="pw2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="fc")(x), name="application_idioms")


def _independent_flops(model):
    """FLOPs counted from the layers' configs and output shapes (NNCF's rule: 2 per multiply-add, biases excluded)."""
    total = 0
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.Dense)):
            continue
        positions = int(np.prod(layer.output.shape[1:-1]))
        if isinstance(layer, keras.layers.SeparableConv2D):
            kh, kw, cin, multiplier = layer.depthwise_kernel.shape
            total += 2 * positions * (kh * kw * cin * multiplier + cin * multiplier * layer.filters)
        else:  # Conv2D (groups=1) kernel (kh, kw, in, out), Dense kernel (in, out)
            total += 2 * positions * int(np.prod(layer.kernel.shape))
    return total


def test_keras_application_idioms_are_pruned_counted_and_stripped_exactly(compress_tf):
    model = _randomise_norms(_application_idioms())
    controller = compress_tf(model, (1, 16, 16, 3), prune_first_conv=True, prune_downsample_convs=True, filters_multiple_of=4)
    groups = {g.producers for g in controller.analysis.groups}
    assert groups == {("stem",), ("conv",), ("sep1.pointwise",), ("sep2.pointwise", "res", "se_expand"), ("se_reduce",), ("pw1",), ("pw2",)}
    rows = {row[0]: row[1:3] for row in controller.statistics()["filter_pruning"].tables[0].rows}
    assert rows["Parameters"][0] == parameter_count(model) and rows["FLOPs"][0] == _independent_flops(model)
    controller.compression_rate = 0.5
    x = _sample((1, 16, 16, 3), 6)
    stripped = controller.strip()
    for training in (False, True):  # a pruned channel is zero after every norm, with moving and with batch statistics
        np.testing.assert_allclose(stripped(x, training=training), model(x, training=training), atol=1e-4, rtol=1e-4)
    rows = {row[0]: row[1:3] for row in controller.statistics()["filter_pruning"].tables[0].rows}
    assert rows["Parameters"][1] == parameter_count(stripped) and rows["FLOPs"][1] == _independent_flops(stripped)
    assert stripped.get_layer("sep1").filters == 16 and stripped.get_layer("stem_bn").beta.shape == (8,)


def test_stripped_layers_are_smaller_and_the_original_keeps_training(compress_tf):
    model = resnet_like()
    controller = compress_tf(model, prune_downsample_convs=True)
    controller.compression_rate = 0.5
    stripped = controller.strip()
    conv, norm, fc = (stripped.get_layer(n) for n in ("s1b0_a_conv", "s1b0_a_bn", "fc"))
    assert conv.filters == 16 and tuple(conv.kernel.shape) == (3, 3, 16, 16)  # 32 -> 16 filters; its inputs are tied to the stem
    assert tuple(norm.gamma.shape) == tuple(norm.moving_mean.shape) == (16,)
    assert tuple(fc.kernel.shape) == (16, 10)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(_sample((1, 8, 8, 3), 8), np.arange(8) % 10, epochs=1, verbose=0)
    controller.compression_rate = 0.25
    assert controller.strip().get_layer("s1b0_a_conv").filters == 24  # stripping again follows the new level


def test_export_to_keras_and_saved_model_reloads_with_equal_outputs(compress_tf, tmp_path):
    controller = compress_tf(_randomise_norms(digits_net(width=16)), (1, 8, 8, 1), prune_downsample_convs=True, filters_multiple_of=4)
    controller.compression_rate = 0.5
    x = _sample((1, 8, 8, 1), 7)
    expected = controller.model(x, training=False).numpy()

    reloaded = keras.saving.load_model(controller.export_model(tmp_path / "digits.keras"))
    np.testing.assert_allclose(reloaded(x), expected, atol=1e-4)
    assert reloaded.get_layer("block1_a_conv").kernel.shape == (3, 3, 16, 8)  # 16 -> 8 filters in the file too
    assert parameter_count(reloaded) < parameter_count(controller.model)

    served = tf.saved_model.load(str(controller.export_model(tmp_path / "digits_saved_model")))
    np.testing.assert_allclose(served.serve(x), expected, atol=1e-4)
    assert sorted(tuple(v.shape) for v in served.variables) == sorted(tuple(w.shape) for w in reloaded.weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.keras", "digits_saved_model"]


def test_layers_inside_a_custom_layer_are_removed_too(compress_tf, tmp_path):
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, activation="relu", name="fc0")(inputs)
    x = ResidualBlock(16, name="block")(keras.layers.Dense(16, activation="relu", name="fc1")(x))
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="with_custom_layer")
    controller = compress_tf(model, (1, 8), prune_first_conv=True)
    assert {g.producers for g in controller.analysis.groups} == {("fc0",), ("fc1", "block/inner")}
    controller.compression_rate = 0.5
    stripped = controller.strip()
    x = _sample((1, 8), 4)
    np.testing.assert_allclose(stripped(x), model(x), atol=1e-5)
    block = stripped.get_layer("block")
    assert stripped.get_layer("fc0").units == 8 and stripped.get_layer("fc1").kernel.shape == (8, 8)
    assert block.dense.units == 8 and tuple(block.norm.gamma.shape) == (8,) and stripped.get_layer("logits").kernel.shape == (8, 3)
    assert parameter_count(stripped) == 3 * (8 * 8 + 8) + 2 * 8 + (8 * 3 + 3)  # fc0, fc1, block/inner; block/norm; logits
    assert not controller.unremovable
    with pytest.raises(
        ExportError,
        match=r"a \.keras file cannot hold this model: strip\(\) made block/inner smaller "
        "inside a subclassed model or custom layer.*export a SavedModel",
    ):
        controller.export_model(tmp_path / "model.keras")  # ResidualBlock(16) would build a 16-unit layer again
    served = tf.saved_model.load(str(controller.export_model(tmp_path / "saved")))
    np.testing.assert_allclose(served.serve(x), model(x), atol=1e-5)


def test_another_algorithms_mask_on_a_cut_weight_follows_the_cut(compress_tf):
    model = resnet_like()
    controller = compress_tf(model, prune_downsample_convs=True)
    fc = model.get_layer("fc")
    element = np.random.default_rng(0).random(tuple(fc.kernel.shape)) > 0.5
    add_transform(fc, "kernel", Mask("sparse", initial=element))  # stands in for a sparsity mask: one entry per weight
    controller.compression_rate = 0.5
    x = _sample((1, 8, 8, 3), 3)
    expected = model(x, training=False).numpy()
    stripped = controller.strip()
    (mask,) = transforms_of(stripped.get_layer("fc"), "kernel")
    assert mask.owner == "sparse" and mask.mask_shape == (16, 10) == tuple(stripped.get_layer("fc").kernel.shape)
    np.testing.assert_allclose(stripped(x, training=False), expected, atol=1e-4, rtol=1e-4)


class _PerChannelScale(WeightTransform):
    """A transform with per-channel state and no select_channels: it cannot follow a cut."""

    def build(self, weight_shape):
        self.scale = self.add_weight(name="scale", shape=(weight_shape[-2],), initializer="ones")
        self.built = True

    def call(self, weight):
        return weight * keras.ops.reshape(keras.ops.cast(self.scale, weight.dtype), (-1, 1))


def test_a_transform_that_cannot_follow_the_cut_is_an_error(compress_tf):
    model = resnet_like()
    controller = compress_tf(model, prune_downsample_convs=True)
    add_transform(model.get_layer("fc"), "kernel", _PerChannelScale("scale_weights"))
    controller.compression_rate = 0.5
    with pytest.raises(ModelTraceError, match="layer 'fc'.*_PerChannelScale of 'scale_weights' cannot follow its weight"):
        controller.strip()


def test_nothing_pruned_strips_to_a_plain_copy(compress_tf):
    model = resnet_like()
    controller, _ = create_compressed_model(model, {"compression": {"algorithm": "filter_pruning"}})
    stripped = controller.strip()
    assert stripped is not model and not has_transforms(stripped) and stripped.count_params() == resnet_like().count_params()
