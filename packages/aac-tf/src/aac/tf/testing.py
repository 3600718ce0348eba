"""Toys for testing TensorFlow algorithms, the loops and the benchmarks: small Keras models, data, an algorithm.

``Registry(get_plugin_manager(autoload=False, plugins=[aac.tf.plugin, TFToyPlugin()]))`` gives a
registry with the TensorFlow backend and ``tf_toy_pruning``: an adaptive algorithm that masks the
output channels of Dense/Conv layers with the smallest L1 norm through :class:`~aac.tf.transforms.Mask`
transforms - everything a real TensorFlow algorithm does with the backend, in a few lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
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
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(hidden, activation="relu", name="fc1"),
            keras.layers.Dense(hidden, activation="relu", name="fc2"),
            keras.layers.Dense(classes, name="logits"),
        ],
        name="toy_sequential",
    )


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
    model.compile(
        optimizer=optimizers[optimizer](learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
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


def raw_ops_net(size: int = 8, channels: int = 3, classes: int = 10, width: int = 16) -> keras.Model:
    """Operators and ``keras.ops`` calls between layers, as MobileNetV3 and ConvNeXt write them: hard-swish
    ``x * relu6(x + 3.0) / 6.0``, a residual ``x + y`` and a global pool as ``keras.ops.mean`` (operation nodes, not layers)."""
    inputs = keras.Input((size, size, channels), name="image")
    x = _conv_bn(inputs, width, act=False, name="stem")
    x = x * keras.ops.relu6(x + 3.0) / 6.0
    y = _conv_bn(x, width, act=False, name="conv")
    x = keras.ops.relu(x + y)
    x = keras.layers.Conv2D(2 * width, 1, name="expand")(x)
    x = keras.ops.mean(x, axis=(1, 2))
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc")(x), name="raw_ops_net")


class PlainSubclassedNet(keras.Model):
    """A subclassed CNN as users write them: no constructor arguments, no layer names, no ``get_config``.

    Keras names its layers per process (``conv2d_7``), so a copy has other auto-generated names unless
    aac gives them the original ones; ``from_config(get_config())`` fails (its ``__init__`` takes no
    ``trainable``/``dtype``), so a copy needs the constructor arguments Keras recorded (none).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = keras.layers.Conv2D(16, 3, padding="same")
        self.bn1 = keras.layers.BatchNormalization()
        self.conv2 = keras.layers.Conv2D(16, 3, padding="same")
        self.bn2 = keras.layers.BatchNormalization()
        self.conv3 = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.fc = keras.layers.Dense(10)

    def call(self, x: Any, training: bool = False) -> Any:
        x = keras.ops.relu(self.bn1(self.conv1(x), training=training))
        y = self.bn2(self.conv2(x), training=training)
        return self.fc(self.pool(self.conv3(keras.ops.relu(x + y))))


# -- tf.distribute ------------------------------------------------------------------------------

#: what :func:`fit_under_mirrored_strategy` runs in a fresh process (logical devices must be set before TF runs anything)
_MIRRORED_FIT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from aac.core import create_compressed_model
    from aac.tf import accuracy_aware_fit
    from aac.tf.testing import compile_classifier, functional_model, make_data

    section, log_dir = json.loads(sys.argv[1]), sys.argv[2]
    keras.utils.set_random_seed(0)
    x, y = make_data(384, noise=1.6)
    train, val = (x[:256], y[:256]), (x[256:], y[256:])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = compile_classifier(functional_model())
    model.fit(*train, epochs=3, batch_size=32, verbose=0)
    config = {"input_info": {"sample_size": [1, 8]}, "compression": section,
              "accuracy_aware_training": {"mode": "early_exit", "params": {
                  "maximal_absolute_accuracy_degradation": 0.0, "maximal_total_epochs": 2}}}
    with strategy.scope():
        controller, model = create_compressed_model(model, config)
    controller.initialize(train)
    # an unreachable budget (a perfect uncompressed model): every run trains its two epochs under the strategy
    model, statistics = accuracy_aware_fit(model, controller, config, train, val, uncompressed_model_accuracy=1.0,
                                           batch_size=32, log_dir=log_dir, verbose=False)
    replicas = [strategy.experimental_local_results(getattr(v, "value", v)) for v in model.variables]
    stripped = controller.strip()
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "variables": len(replicas),
        "mirrored": sum(len(r) == 2 for r in replicas),
        "disagreement": max(float(np.max(np.abs(np.asarray(r[-1]) - np.asarray(r[0])))) for r in replicas),
        "epochs": statistics.total_epochs,
        "rate": controller.compression_rate if section["algorithm"] != "quantization" else None,
        "strip_diff": float(np.max(np.abs(np.asarray(stripped(val[0], training=False)) - np.asarray(model(val[0], training=False))))),
    }))
""")


def fit_under_mirrored_strategy(section: Mapping[str, Any], log_dir: str | Path, timeout: float = 300) -> dict[str, Any]:
    """Run ``accuracy_aware_fit`` (early exit, 2 epochs: the budget is unreachable) on :func:`functional_model` compressed with ``section`` under
    ``MirroredStrategy`` on 2 logical CPUs, in a fresh process; return what it measured.

    ``disagreement`` is the largest difference between the two replicas' copies of any model variable
    (weights and transform variables: masks, quantizer ranges) after training; ``strip_diff`` the largest
    difference between the stripped and the compressed model's outputs.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_FIT, json.dumps(dict(section)), str(log_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the MirroredStrategy run failed:\n{result.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


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
        "params": {
            "type": "object",
            "properties": {"target": {"type": "number"}, "steps": {"type": "integer"}},
            "additionalProperties": False,
        },
        "ignored_scopes": {"type": ["array", "string"]},
        "target_scopes": {"type": ["array", "string"]},
    },
}


class TFToyPlugin:
    """Registers ``tf_toy_pruning`` for the ``tf`` framework."""

    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        return [
            AlgorithmSpec(name="tf_toy_pruning", adaptive=True, frameworks={"tf": build_toy_pruning}, schema=TOY_SCHEMA, package="aac-tf")
        ]


class TFHarness:
    """The ``framework`` fixture value of aac-core's conformance suite (:mod:`aac.core.testing`) for Keras:
    :func:`resnet_like`, its data, ``.keras`` export read back by ``keras.saving.load_model``."""

    export_suffix = ".keras"
    export_options: Mapping[str, Any] = {}

    def model(self) -> keras.Model:
        keras.utils.set_random_seed(0)
        return resnet_like()

    def input_info(self) -> Mapping[str, Any]:
        return {"sample_size": [1, 8, 8, 3]}

    def batches(self) -> list[np.ndarray]:
        generator = np.random.default_rng(1)
        return [generator.standard_normal((4, 8, 8, 3)).astype("float32") for _ in range(2)]

    def outputs(self, model: Any, batch: np.ndarray) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(model(batch, training=False)))

    def exported_outputs(self, path: Path, batch: np.ndarray) -> np.ndarray:
        return self.outputs(keras.saving.load_model(path), batch)
