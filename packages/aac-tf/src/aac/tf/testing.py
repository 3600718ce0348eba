"""Toys for testing TensorFlow algorithms, the loops and the benchmarks: small Keras models, data, an algorithm.

``Registry(get_plugin_manager(autoload=False, plugins=[aac.tf.plugin, TFToyPlugin()]))`` gives a
registry with the TensorFlow backend and ``tf_toy_pruning``: an adaptive algorithm that masks the
output channels of Dense/Conv layers with the smallest L1 norm through :class:`~aac.tf.transforms.Mask`
transforms - everything a real TensorFlow algorithm does with the backend, in a few lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import keras
import numpy as np

from aac.core.api import CompressionScheduler, CompressionStage
from aac.core.config import AlgorithmSection
from aac.core.graph import Metatype
from aac.core.hookspecs import hookimpl
from aac.core.specs import AlgorithmSpec
from aac.core.statistics import AlgorithmStatistics
from aac.tf.algorithm import TFCompressionAlgorithm
from aac.tf.models import ModelTraceError, TFModel
from aac.tf.transforms import Mask

# -- data and models --------------------------------------------------------------------------


def make_data(samples: int = 256, features: int = 8, classes: int = 3, seed: int = 0, noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: ``(x float32 [samples, features], y int32 [samples])``, learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, features)) * 2.0
    y = rng.integers(0, classes, samples).astype("int32")
    x = (centres[y] + rng.normal(scale=noise, size=(samples, features))).astype("float32")
    return x, y


def sequential_model(features: int = 8, classes: int = 3, hidden: int = 16) -> keras.Sequential:
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(hidden, activation="relu", name="fc1"),
        keras.layers.Dense(hidden, activation="relu", name="fc2"),
        keras.layers.Dense(classes, name="logits"),
    ], name="toy_sequential")


def functional_model(features: int = 8, classes: int = 3, hidden: int = 16) -> keras.Model:
    """Dense layers with a residual addition and a batch norm."""
    inputs = keras.Input((features,), name="features")
    x = keras.layers.Dense(hidden, activation="relu", name="fc1")(inputs)
    y = keras.layers.Dense(hidden, name="fc2")(x)
    y = keras.layers.BatchNormalization(name="bn2")(y)
    x = keras.layers.Activation("relu", name="relu2")(keras.layers.Add(name="residual")([x, y]))
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(x), name="toy_functional")


def conv_model(size: int = 8, channels: int = 3, classes: int = 3) -> keras.Model:
    """A tiny CNN (conv, batch norm, residual, concatenation, global pooling) for graph and export tests."""
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    y = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    y = keras.layers.BatchNormalization(name="bn2")(y)
    x = keras.layers.ReLU(name="relu2")(keras.layers.Add(name="residual")([x, y]))
    x = keras.layers.Concatenate(name="concat")([x, keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(x), name="toy_cnn")


@keras.saving.register_keras_serializable(package="aac_tf_testing")
class ResidualBlock(keras.layers.Layer):
    """A custom layer holding sub-layers (traced into the graph as its parts)."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units, name="inner")
        self.norm = keras.layers.BatchNormalization(name="norm")

    def call(self, x: Any, training: Any = None) -> Any:
        return keras.ops.relu(self.norm(self.dense(x), training=training)) + x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="aac_tf_testing")
class SubclassedModel(keras.Model):
    """A subclassed model whose ``call`` uses Keras layers and ``keras.ops`` only (so it can be traced)."""

    def __init__(self, features: int = 8, classes: int = 3, hidden: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.features, self.classes, self.hidden = features, classes, hidden
        self.fc1 = keras.layers.Dense(hidden, activation="relu", name="fc1")
        self.block = ResidualBlock(hidden, name="block")
        self.dropout = keras.layers.Dropout(0.1, name="dropout")
        self.logits = keras.layers.Dense(classes, name="logits")

    def call(self, x: Any, training: bool = False) -> Any:
        return self.logits(self.dropout(self.block(self.fc1(x), training=training), training=training))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "features": self.features, "classes": self.classes, "hidden": self.hidden}


def compile_classifier(model: keras.Model, learning_rate: Any = 0.01, optimizer: str = "adam") -> keras.Model:
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    model.compile(optimizer=optimizers[optimizer](learning_rate), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


# -- reference CNNs: the Keras twins of aac.torch.testing.models (channels last) ------------------


def _conv_bn(x: Any, filters: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: bool = True, name: str = "conv") -> Any:
    x = keras.layers.Conv2D(filters, kernel, stride, padding="same", groups=groups, use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)  # PyTorch's default: fits short trainings
    return keras.layers.ReLU(name=f"{name}_relu")(x) if act else x


def _basic_block(x: Any, width: int, stride: int, name: str) -> Any:
    """ResNet basic block: two 3x3 conv-BN, a projection shortcut when the shape changes, ReLU after the addition."""
    y = _conv_bn(x, width, stride=stride, name=f"{name}_a")
    y = _conv_bn(y, width, act=False, name=f"{name}_b")
    shortcut = x if stride == 1 and x.shape[-1] == width else _conv_bn(x, width, 1, stride, act=False, name=f"{name}_down")
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([y, shortcut]))


def resnet_like(size: int = 8, channels: int = 3, classes: int = 10, widths: tuple[int, ...] = (16, 32), blocks: int = 1) -> keras.Model:
    """Residual additions (and projection shortcuts) tie producers into groups."""
    inputs = keras.Input((size, size, channels), name="image")
    x = _conv_bn(inputs, widths[0], name="stem")
    for stage, width in enumerate(widths):
        for block in range(blocks):
            x = _basic_block(x, width, 2 if stage > 0 and block == 0 else 1, f"s{stage}b{block}")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc")(x), name="resnet_like")


def mobilenet_like(size: int = 8, channels: int = 3, classes: int = 10, width: int = 16) -> keras.Model:
    """MobileNetV2 blocks: 1x1 expansion, 3x3 DepthwiseConv2D (a follower of the expansion), 1x1 projection, residuals."""
    inputs = keras.Input((size, size, channels), name="image")
    x = _conv_bn(inputs, width, name="stem")
    for index, (cout, stride) in enumerate([(width, 1), (2 * width, 2), (2 * width, 1)]):
        cin = x.shape[-1]
        y = _conv_bn(x, 2 * cin, 1, name=f"b{index}_expand")
        y = keras.layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False, name=f"b{index}_dw")(y)
        y = keras.layers.ReLU(name=f"b{index}_dw_relu")(keras.layers.BatchNormalization(name=f"b{index}_dw_bn")(y))
        y = _conv_bn(y, cout, 1, act=False, name=f"b{index}_project")
        x = keras.layers.Add(name=f"b{index}_add")([x, y]) if stride == 1 and cin == cout else y
    x = keras.layers.GlobalAveragePooling2D(name="gap")(_conv_bn(x, 4 * width, 1, name="head"))
    x = keras.layers.Dropout(0.1, name="dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="classifier")(x), name="mobilenet_like")


def densenet_like(size: int = 8, channels: int = 3, classes: int = 10, growth: int = 8, stem: int = 16) -> keras.Model:
    """Each layer concatenates its output to its input; a 1x1 transition, pooling and Flatten feed the classifier."""
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Conv2D(stem, 3, padding="same", use_bias=False, name="stem")(inputs)
    for index in range(3):
        y = keras.layers.ReLU(name=f"d{index}_relu")(keras.layers.BatchNormalization(name=f"d{index}_bn")(x))
        y = keras.layers.Conv2D(growth, 3, padding="same", use_bias=False, name=f"d{index}_conv")(y)
        x = keras.layers.Concatenate(name=f"d{index}_concat")([x, y])
    x = keras.layers.ReLU(name="norm_relu")(keras.layers.BatchNormalization(name="norm")(x))
    x = keras.layers.Conv2D(32, 1, use_bias=False, name="transition")(x)
    x = keras.layers.Flatten(name="flatten")(keras.layers.AveragePooling2D(2, name="pool")(x))
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc")(x), name="densenet_like")


def grouped_conv_net(size: int = 8, channels: int = 3, classes: int = 10, groups: int = 2) -> keras.Model:
    """A grouped 3x3 convolution (``Conv2D(groups=...)``) between plain ones: it and its producer stay whole."""
    inputs = keras.Input((size, size, channels), name="image")
    x = _conv_bn(inputs, 16, name="c1")
    x = _conv_bn(x, 32, 1, name="c2")
    x = _conv_bn(x, 32, 3, groups=groups, name="grouped")
    x = _conv_bn(_conv_bn(x, 32, 1, name="c3"), 16, 3, name="c4")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc")(x), name="grouped_conv_net")


def digits_net(width: int = 32, classes: int = 10) -> keras.Model:
    """Small residual CNN for 8x8 single-channel images (sklearn's digits): the twin of ``DigitsNet``."""
    inputs = keras.Input((8, 8, 1), name="image")
    x = _conv_bn(inputs, width, name="stem")
    x = _basic_block(_basic_block(x, width, 1, "block1"), 2 * width, 2, "block2")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(2 * width, activation="relu", name="fc1")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc2")(x), name="digits_net")


# -- a toy algorithm ---------------------------------------------------------------------------


class ToyChannelSchedule(CompressionScheduler):
    """Raises the pruning rate linearly to ``target`` over ``steps`` epochs."""

    def __init__(self, algorithm: ToyChannelPruning, target: float, steps: int) -> None:
        super().__init__()
        self.algorithm, self.target, self.steps = algorithm, target, max(1, steps)

    def _on_epoch(self) -> None:
        self.algorithm.set_rate(self.target * min(1.0, (self.current_epoch + 1) / self.steps))


class ToyChannelPruning(TFCompressionAlgorithm):
    """Adaptive toy algorithm: masks the output channels (kernel columns and bias) with the smallest L1 norm.

    It compresses the Dense and Conv2D layers the config selects, except those whose output leaves
    the model (found in the graph when there is one). ``compression_rate`` is the fraction of masked
    channels in every layer; the masks are model variables, restored with the model's weights.
    """

    name = "tf_toy_pruning"
    adaptive = True

    def __init__(self, prepared: TFModel, section: AlgorithmSection) -> None:
        super().__init__(prepared, section)
        params = section.params
        self.target = float(params.get("target", 0.5))
        self._rate = 0.0
        outputs = _output_layers(prepared)
        self.masks: dict[str, tuple[Any, Mask, Mask | None]] = {}
        for path, layer in self.selected_layers(keras.layers.Dense, keras.layers.Conv2D):
            if path in outputs or isinstance(layer, keras.layers.DepthwiseConv2D):
                continue
            channels = int(layer.kernel.shape[-1])
            kernel_mask = self.add_transform(layer, "kernel", Mask(self.name, shape=(channels,)))
            bias_mask = self.add_transform(layer, "bias", Mask(self.name, shape=(channels,))) if layer.use_bias else None
            self.masks[path] = (layer, kernel_mask, bias_mask)
        self._scheduler = ToyChannelSchedule(self, self.target, int(params.get("steps", 2)))

    def set_rate(self, rate: float) -> None:
        self._rate = float(rate)
        for layer, kernel_mask, bias_mask in self.masks.values():
            kernel = np.abs(layer.kernel.numpy()).reshape(-1, kernel_mask.mask_shape[-1]).sum(axis=0)
            pruned = int(np.floor(self._rate * kernel.size + 0.5))
            mask = np.ones_like(kernel)
            mask[np.argsort(kernel, kind="stable")[:pruned]] = 0.0
            kernel_mask.update(mask)
            if bias_mask is not None:
                bias_mask.update(mask)

    @property
    def compression_rate(self) -> float:
        return self._rate

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self.set_rate(value)

    @property
    def maximal_compression_rate(self) -> float:
        return 0.9

    def compression_stage(self) -> CompressionStage:
        if self.scheduler_disabled or self._rate >= self.target - 1e-9:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED if self._rate > 0 else CompressionStage.UNCOMPRESSED

    def masked_channels(self) -> int:
        return int(sum(int((m.numpy() == 0).sum()) for _, m, _ in self.masks.values()))

    def _collect_statistics(self) -> AlgorithmStatistics:
        return AlgorithmStatistics(self.name, {"compression_rate": self._rate, "masked_channels": float(self.masked_channels())})

    def _get_algorithm_state(self) -> dict[str, Any]:
        return {"rate": self._rate}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        self._rate = float(state.get("rate", 0.0))


def _output_layers(prepared: TFModel) -> set[str]:
    """Paths of the layers whose results leave the model (pruning them would change the output size)."""
    try:
        graph = prepared.graph
    except ModelTraceError:
        return set()
    found: set[str] = set()
    for node in graph.of_type(Metatype.OUTPUT):
        stack = list(node.inputs)
        while stack:
            producer = graph.node(stack.pop())
            if producer.layer is not None:
                found.add(producer.layer)
            elif producer.metatype in (Metatype.ACTIVATION, Metatype.UNKNOWN):
                stack.extend(producer.inputs)
    return found


def build_toy_pruning(prepared: TFModel, section: AlgorithmSection, config: Any) -> ToyChannelPruning:
    return ToyChannelPruning(prepared, section)


TOY_SCHEMA = {
    "$id": "urn:aac:tf:testing:tf_toy_pruning",
    "type": "object",
    "properties": {
        "params": {"type": "object", "properties": {"target": {"type": "number"}, "steps": {"type": "integer"}},
                   "additionalProperties": False},
        "ignored_scopes": {"type": ["array", "string"]},
        "target_scopes": {"type": ["array", "string"]},
    },
}


class TFToyPlugin:
    """Registers ``tf_toy_pruning`` for the ``tf`` framework."""

    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        return [AlgorithmSpec(name="tf_toy_pruning", adaptive=True, frameworks={"tf": build_toy_pruning},
                              schema=TOY_SCHEMA, package="aac-tf")]
