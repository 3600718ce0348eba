"""Pruning groups of Keras models: the neutral analysis on aac-tf's graph, plus the Keras-only rules."""

import keras

from aac.core.graph import Metatype
from aac.pruning.groups import ChannelRun, PruningRules, analyze
from aac.pruning.tf.algorithm import pruning_graph
from aac.tf.models import prepare_model
from aac.tf.testing import densenet_like, grouped_conv_net, mobilenet_like, resnet_like


def _analyze(model, **rules):
    return analyze(pruning_graph(prepare_model(model, {"input_info": {"sample_size": [1, 8, 8, 3]}})), PruningRules(**rules))


def _groups(analysis):
    return {g.producers: g.channels for g in analysis.groups}


def _kept(analysis):
    return {p: k.reasons for k in analysis.kept for p in k.producers}


def test_residual_additions_tie_their_producers():
    analysis = _analyze(resnet_like(), prune_downsample=True)
    assert _groups(analysis) == {("s0b0_a_conv",): 16, ("s1b0_a_conv",): 32, ("s1b0_b_conv", "s1b0_down_conv"): 32}
    assert "first layer" in _kept(analysis)["stem_conv"][0] and "s0b0_b_conv" in _kept(analysis)  # tied to the stem
    assert _kept(analysis)["fc"] == ("its channels reach the model output",)
    tied = analysis.group_of("s1b0_b_conv")
    assert set(tied.followers) == {"s1b0_b_bn", "s1b0_down_bn"}
    assert analysis.layers["fc"].inputs.runs == (ChannelRun(tied.id, 32),)
    kept = _kept(_analyze(resnet_like()))
    assert "downsamples (stride (2, 2))" in kept["s1b0_a_conv"][0]


def test_depthwise_convolutions_follow_their_expansion():
    analysis = _analyze(mobilenet_like())
    expand = analysis.group_of("b0_expand_conv")
    assert expand.followers == ("b0_expand_bn", "b0_dw", "b0_dw_bn")
    depthwise = analysis.layers["b0_dw"]
    assert depthwise.metatype is Metatype.CONV and depthwise.inputs == depthwise.outputs
    assert ("b1_project_conv", "b2_project_conv") in _groups(analysis)  # tied by the residual addition of block 2


def test_concatenation_maps_each_producer_to_its_slice_and_flatten_repeats_channels_last():
    analysis = _analyze(densenet_like(), prune_downsample=True)
    first, second = analysis.group_of("d0_conv"), analysis.group_of("d1_conv")
    assert analysis.layers["d2_conv"].inputs.runs == (ChannelRun(None, 16), ChannelRun(first.id, 8), ChannelRun(second.id, 8))
    assert len(analysis.layers["norm"].outputs.groups) == 3 and analysis.layers["norm"].outputs.channels == 40
    fc = analysis.layers["fc"].inputs
    assert (fc.repeat, fc.channel_major) == (16, False)  # NHWC flatten: feature s * C + c


def test_grouped_convolutions_stay_whole():
    analysis = _analyze(grouped_conv_net())
    kept = _kept(analysis)
    assert "grouped convolution (groups=2)" in kept["grouped_conv"][0]
    assert kept["c2_conv"] == ("it feeds grouped convolution 'grouped_conv' (groups=2)",)
    assert set(_groups(analysis)) == {("c3_conv",), ("c4_conv",)}


def _chain(middle):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    x = middle(keras.layers.Conv2D(8, 3, padding="same", name="b")(x))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, padding="same", name="c")(x))
    return keras.Model(inputs, keras.layers.Dense(2, name="fc")(x))


def test_batch_norms_without_scale_or_offset_are_pruned():
    """Issue 11: BatchNormalization(scale=False) (InceptionV3) zeroes a pruned channel through its masked moving mean."""
    for norm in (dict(scale=False), dict(center=False), dict(scale=False, center=False)):
        analysis = _analyze(_chain(keras.layers.BatchNormalization(name="bn", **norm)), prune_first=True)
        assert ("b",) in _groups(analysis) and analysis.group_of("b").followers == ("bn",)


def test_squeeze_excitation_reshape_and_keras_scale_sums_are_followed():
    """Issue 11: EfficientNet's SE block (pool, Reshape((1, 1, C)), two 1x1 convolutions, multiply) and
    InceptionResNetV2's CustomScaleLayer (x + up * scale) let channels through."""
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    def squeeze_excite(x):
        se = keras.layers.GlobalAveragePooling2D(name="squeeze")(x)
        se = keras.layers.Reshape((1, 1, 8), name="reshape")(se)
        se = keras.layers.Conv2D(2, 1, activation="swish", name="reduce")(se)
        se = keras.layers.Conv2D(8, 1, activation="sigmoid", name="expand")(se)
        return keras.layers.Multiply(name="excite")([x, se])

    analysis = _analyze(_chain(squeeze_excite), prune_first=True)
    assert {("b", "expand"), ("reduce",)} <= set(_groups(analysis))
    scaled = _analyze(_chain(lambda x: CustomScaleLayer(0.2, name="scale")([x, keras.layers.Conv2D(8, 1, name="up")(x)])), prune_first=True)
    assert ("b", "up") in _groups(scaled)


def test_a_dense_layer_on_an_image_acts_on_its_channels():
    """Issue 11: Keras' Dense on (batch, H, W, C) is a 1x1 convolution (ConvNeXt's pointwise layers), not a layer along a spatial axis."""
    analysis = _analyze(_chain(lambda x: keras.layers.Dense(16, activation="gelu", name="dense")(x)), prune_first=True)
    assert ("dense",) in _groups(analysis) and ("b",) in _groups(analysis)
    assert analysis.layers["c"].inputs.runs == (ChannelRun(analysis.group_of("dense").id, 16),)


def test_layers_with_per_channel_weights_that_channels_pass_through_block():
    analysis = _analyze(_chain(keras.layers.PReLU(shared_axes=[1, 2], name="prelu")), prune_first=True)
    assert "it feeds layer 'prelu' (PReLU), which aac cannot follow channels through" in _kept(analysis)["b"]
    assert ("a",) in _groups(analysis) and ("c",) in _groups(analysis)
