"""The Keras filter-pruning controller: schedule, statistics, the three model styles (the setter/getter, rate down
and up and state round trip are aac-core's conformance suite: test_pruning_tf_conformance.py)."""

import keras
import numpy as np
import pytest

from aac.core import CompressionStage
from aac.core.errors import CompressionRateError, ConfigError
from aac.pruning.tf.algorithm import TFFilterPruning
from aac.pruning.tf.strip import parameter_count
from aac.tf.testing import SubclassedModel, digits_net, grouped_conv_net, resnet_like
from aac.tf.transforms import effective_value, has_transforms, original


def _masked_filters(layer):
    kernel = effective_value(layer, "kernel")
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(0) == 0


def test_the_tf_factory_is_registered(compress_tf):
    controller = compress_tf(resnet_like())
    assert isinstance(controller, TFFilterPruning) and controller.name == "filter_pruning"


def test_flops_mode_and_its_input_info(compress_tf):
    controller = compress_tf(resnet_like(), pruning_flops_target=0.5, prune_downsample_convs=True, filters_multiple_of=1)
    controller.compression_rate = 0.4
    assert controller.compression_rate == pytest.approx(0.4, abs=0.01)
    assert controller.statistics()["filter_pruning"].scalars["model_flops_removed"] == pytest.approx(controller.compression_rate)
    with pytest.raises(ConfigError, match="set either pruning_target .* or pruning_flops_target .*, not both"):
        compress_tf(resnet_like(), pruning_flops_target=0.5, pruning_target=0.5)


def test_schedule_moves_the_level_then_freezes(compress_tf):
    controller = compress_tf(resnet_like(), section={"pruning_init": 0.1}, pruning_target=0.5, pruning_steps=3, prune_downsample_convs=True)
    rates, stages = [], []
    for _ in range(5):
        controller.scheduler.epoch_step()
        rates.append(controller.compression_rate)
        stages.append(controller.compression_stage())
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.5, abs=0.03)
    assert stages[0] is CompressionStage.PARTIALLY_COMPRESSED and stages[-1] is CompressionStage.FULLY_COMPRESSED
    conv = controller.model.get_layer("s0b0_a_conv")
    before = _masked_filters(conv)
    kernel = original(conv, "kernel")
    kernel.assign(kernel.numpy() * np.linspace(10, 0.1, 16, dtype="float32"))  # reorder importance
    controller.scheduler.epoch_step()
    assert np.array_equal(_masked_filters(conv), before)  # frozen masks do not follow the weights


def test_statistics_tables(compress_tf):
    controller = compress_tf(digits_net(width=16), (1, 8, 8, 1), prune_downsample_convs=True, filters_multiple_of=4)
    controller.compression_rate = 0.5
    stats = controller.statistics()["filter_pruning"]
    model_table, layer_table, kept_table = stats.tables
    assert [row[0] for row in model_table.rows] == ["FLOPs", "Parameters", "Filters"]
    assert all(row[2] < row[1] and 0 < row[3] < 1 for row in model_table.rows)
    layers = {row[0]: row for row in layer_table.rows}
    assert layers["block2_a_conv"][1:3] == (32, 16)
    assert layers["fc2"][3:5] == (32, 16)  # the classifier's inputs follow fc1
    assert "fc2" in kept_table.to_str() and "stem_conv" in kept_table.to_str()
    assert "Statistics of the pruned model" in controller.statistics().to_str()


def test_sequential_models_are_pruned_and_ignored_scopes_apply(compress_tf):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, name="fc"),
        ],
        name="plain_cnn",
    )
    controller = compress_tf(model, section={"ignored_scopes": ["conv3"]}, prune_first_conv=True)
    assert {g.producers for g in controller.analysis.groups} == {("conv1",)}
    kept = {p: k.reasons for k in controller.analysis.kept for p in k.producers}
    assert kept["conv2"] == ("it feeds layer 'conv3' (Conv2D in ignored_scopes), which aac cannot follow channels through",)
    controller.compression_rate = 0.5
    assert _masked_filters(model.get_layer("conv1")).sum() == 8
    assert not _masked_filters(model.get_layer("conv2")).any()


def test_subclassed_models_are_physically_pruned_by_strip(compress_tf):
    model = SubclassedModel()
    model(np.zeros((2, 8), "float32"))
    controller = compress_tf(model, (1, 8), prune_first_conv=True)
    assert {g.producers for g in controller.analysis.groups} == {("fc1", "block/inner")}
    controller.compression_rate = 0.5
    x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    stripped = controller.strip()
    assert type(stripped) is SubclassedModel and not has_transforms(stripped) and has_transforms(model)
    np.testing.assert_allclose(stripped(x), model(x), atol=1e-5)
    assert stripped.fc1.units == 8 and tuple(stripped.block.dense.kernel.shape) == (8, 8) and tuple(stripped.logits.kernel.shape) == (8, 3)
    assert parameter_count(stripped) == 2 * (8 * 8 + 8) + 2 * 8 + (8 * 3 + 3)  # fc1, block/inner; block/norm; logits
    assert not controller.unremovable


class _BuiltInConstructor(keras.Model):
    """A subclassed model whose constructor builds a layer: its copy's layer exists at full size before aac could change it."""

    def __init__(self):
        super().__init__()
        self.fc1 = keras.layers.Dense(16, activation="relu")
        self.fc1.build((None, 8))
        self.fc2 = keras.layers.Dense(16, activation="relu")
        self.logits = keras.layers.Dense(3)

    def call(self, x):
        return self.logits(self.fc2(self.fc1(x)))


def test_subclassed_layers_built_by_the_constructor_are_zeroed_the_rest_removed(compress_tf):
    model = _BuiltInConstructor()
    model(np.zeros((2, 8), "float32"))
    controller = compress_tf(model, (1, 8), prune_first_conv=True)
    controller.compression_rate = 0.5
    fc1 = model.fc1.name
    with pytest.warns(
        UserWarning,
        match=f"zeroes the pruned filters of {fc1} but cannot remove them: '{fc1}' is built by the "
        "constructor of the subclassed model _BuiltInConstructor",
    ):
        stripped = controller.strip()
    x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    np.testing.assert_allclose(stripped(x), model(x), atol=1e-5)
    assert stripped.fc1.units == 16 and stripped.fc2.units == 8 and tuple(stripped.logits.kernel.shape) == (8, 3)
    table = controller.statistics()["filter_pruning"].tables[-1]
    assert table.title == "Pruned layers strip() zeroes but cannot remove" and [row[0] for row in table.rows] == [fc1]


def test_a_rate_out_of_reach_names_what_keeps_layers_whole(compress_tf):
    """Issue 11: when little is prunable the error says why (here grouped convolutions), not only filters_multiple_of."""
    controller = compress_tf(grouped_conv_net())
    with pytest.raises(
        CompressionRateError,
        match=r"at most 0\.6667 is reachable: 2 producer layers in 2 prunable groups; 4 kept whole "
        r"\(2 by grouped convolutions, 1 by first layers \(prune_first_conv: false\), 1 by "
        r"model outputs; .*each prunable group keeps at least 8 filters",
    ):
        controller.compression_rate = 0.9
