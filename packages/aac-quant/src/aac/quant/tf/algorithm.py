"""``quantization`` for Keras models: how quantizers attach, reading kernels, running batches, strip and export.

The neutral controller (:mod:`aac.quant.algorithm`) decides where quantizers go, on aac-tf's graph, as
it does for PyTorch (:func:`aac.quant.placement.input_sites`); here they attach:

* **weights** - every selected ``Conv*``, ``Conv*Transpose``, ``DepthwiseConv*`` and ``Dense`` layer gets a
  :class:`~aac.quant.tf.quantizers.TFFakeQuantizer` on its ``kernel`` (an aac-tf weight transform);
* **activations** - the first input of each such layer goes through a fake quantizer first (an
  instance-level ``call`` wrapper, like aac-tf's transforms). Layers reading one tensor share one
  quantizer; it is tracked as a sub-layer of the first of them, so ``model.variables``, ``fit`` and
  aac's checkpoints carry it.

``initialize(data)`` sets weight ranges from the weights, activation ranges from statistics over
``num_init_samples`` samples (run eagerly), chooses mixed-precision bit widths (``hawq``/``autoq``), then
re-estimates batch-norm statistics.

``strip()`` stores every weight on its grid (the fake quantization folded in) and quantizes layer
inputs with fixed :class:`~aac.quant.tf.quantizers.QuantizeDequantize` layers: inserted into the graph of a
Sequential or functional model (so ``.keras`` files keep them), and through ``call`` wrappers for
layers of a subclassed model or inside a custom layer or nested model (a SavedModel keeps those; a
``.keras`` file cannot, and exporting one is refused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from aac.core.api import reiterable
from aac.core.config import AlgorithmSection, Config
from aac.core.graph import Node
from aac.quant.algorithm import QuantizationAlgorithmBase, QuantizationError
from aac.quant.settings import PrecisionSettings, QuantizerSettings
from aac.quant.tf.hessian import hutchinson_traces, labelled_batches
from aac.quant.tf.quantizers import TFFakeQuantizer
from aac.tf.algorithm import TFFramework
from aac.tf.batchnorm import input_batches
from aac.tf.export import ExportError
from aac.tf.models import TFModel, iter_layers, model_style, origin
from aac.tf.transforms import add_transform, fold_all, iter_transforms, transforms_of

L = keras.layers
#: layers whose kernels and inputs are quantized
QUANTIZABLE: tuple[type, ...] = (
    L.Conv1D,
    L.Conv2D,
    L.Conv3D,
    L.Conv1DTranspose,
    L.Conv2DTranspose,
    L.Conv3DTranspose,
    L.DepthwiseConv1D,
    L.DepthwiseConv2D,
    L.Dense,
)
_OUTPUT_AXIS_MINUS_2 = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose, L.DepthwiseConv1D, L.DepthwiseConv2D)
#: attribute of a stripped model that quantizes some inputs through call wrappers (not saveable as .keras)
_WRAPPED = "_aac_quant_wrapped_inputs"


class QuantizeInputCall:
    """The instance-level ``call`` of a layer whose first input is quantized (wraps any earlier ``call``)."""

    def __init__(self, layer: Any, quantizer: Any, inner: Any) -> None:
        self.layer, self.quantizer, self.inner = layer, quantizer, inner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = self.inner if self.inner is not None else type(self.layer).call.__get__(self.layer)
        if args:
            args = (self.quantizer.call(args[0]), *args[1:])
        return call(*args, **kwargs)


def _wrap_input(layer: Any, quantizer: Any) -> None:
    object.__setattr__(layer, "call", QuantizeInputCall(layer, quantizer, layer.__dict__.get("call")))


def _track(layer: Any, sublayer: Any) -> None:
    locked = layer._tracker.locked
    layer._tracker.unlock()
    try:
        layer._tracker.add_to_store("layers", sublayer)
    finally:
        if locked:
            layer._tracker.lock()


def _weight_axis(layer: Any) -> tuple[int, int]:
    """(channels, axis) of a kernel's output channels (Keras: last axis, -2 for transposed and depthwise kernels)."""
    kernel = layer.kernel
    axis = -2 if isinstance(layer, _OUTPUT_AXIS_MINUS_2) else -1
    return int(kernel.shape[axis]), axis


class TFQuantizationOps:
    """:class:`aac.quant.algorithm.QuantizationOps` for a ``keras.Model`` (see the module docstring)."""

    def __init__(self, prepared: TFModel) -> None:
        self.framework = TFFramework(prepared)
        self.model = prepared.model
        self._prepared = prepared
        self._layers = dict(iter_layers(self.model))
        self._algorithm: QuantizationAlgorithmBase | None = None

    @property
    def algorithm(self) -> QuantizationAlgorithmBase:
        """The controller :meth:`bind` bound these ops to."""
        if self._algorithm is None:
            raise QuantizationError("quantization: the Keras ops are used before bind() bound them to a controller")
        return self._algorithm

    # -- placement ----------------------------------------------------------------------------
    def bind(self, algorithm: QuantizationAlgorithmBase) -> None:
        self._algorithm = algorithm

    def quantizable_kinds(self) -> str:
        return f"the kernels and inputs of {', '.join(sorted(t.__name__ for t in QUANTIZABLE))} layers"

    def quantizable_layers(self) -> list[str]:
        return [path for path, layer in self._layers.items() if isinstance(layer, QUANTIZABLE)]

    def calls_layer(self, node: Node) -> bool:
        """Every graph node of a Keras layer is a call of it (a kernel is read only by its layer)."""
        return node.layer is not None

    def input_layout(self, path: str) -> tuple[int, int]:
        """The last axis of the first input of the layer at ``path`` (channels last), its size from the graph."""
        graph = self._prepared.graph
        node = graph.layers()[path][0]
        shape = graph.node(node.inputs[0]).output_shape
        if not shape:
            raise QuantizationError(f"activations.per_channel needs the input shape of '{path}': add input_info to the config")
        return int(shape[-1]), -1

    def attach_weight_quantizer(self, path: str, settings: QuantizerSettings) -> TFFakeQuantizer:
        """The quantizer as the last transform of the layer's ``kernel`` (:mod:`aac.tf.transforms`)."""
        layer = self._layers[path]
        quantizer = TFFakeQuantizer.from_settings(settings, self.algorithm.name, *_weight_axis(layer))
        quantizer.label = f"{path}.kernel"
        add_transform(layer, "kernel", quantizer)
        return quantizer

    def attach_input_quantizer(
        self, consumers: Sequence[str], settings: QuantizerSettings, layout: tuple[int, int] | None
    ) -> TFFakeQuantizer:
        """Tracked as a sub-layer of the first consumer; each consumer's ``call`` quantizes its first input first.

        A Keras weight quantizer needs no link to it: a cut of a kernel's input channels keeps the weight
        quantizer as it is, and a stripped per-channel input quantizer refuses an input that was cut."""
        channels, axis = layout if layout is not None else (None, -1)
        quantizer = TFFakeQuantizer.from_settings(settings, self.algorithm.name, channels, axis)
        quantizer.build()
        _track(self._layers[consumers[0]], quantizer)
        for consumer in consumers:
            _wrap_input(self._layers[consumer], quantizer)
        return quantizer

    def place_functional(self) -> None:
        """Nothing: a Keras model's matrix products are layers (see :meth:`coverage`)."""

    # -- ranges ---------------------------------------------------------------------------------
    def weight_values(self, key: str) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(self._weight_value(key)), dtype=np.float32)

    def fake_quantize(self, quantizer: TFFakeQuantizer, values: np.ndarray) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(quantizer.fake_quantize(keras.ops.convert_to_tensor(values))))

    def rereadable(self, data_loader: Any) -> bool:
        return reiterable(data_loader) or isinstance(data_loader, (np.ndarray, tuple))

    def run_batches(self, data_loader: Any, reading: Mapping[str, Any], done: Callable[[], bool]) -> None:
        """Eagerly (the quantizers observe NumPy values), with ``training=False``; arrays are cut into
        ``batch_size`` batches, as many as any range entry or batch-norm adaptation needs."""
        for x in input_batches(data_loader, reading["batch_size"], self._samples_needed()):
            self.model(x, training=False)
            if done():
                break

    def _samples_needed(self) -> int:
        settings = self.algorithm.settings
        counts = [e.num_init_samples for e in settings.ranges if e.num_init_steps is None]
        return max([*counts, settings.num_bn_adaptation_samples, 1])

    # -- what mixed precision reads ------------------------------------------------------------------
    def weight_layer(self, key: str) -> str:
        return key

    def weight_numel(self, key: str) -> int:
        return int(np.prod(self._layers[key].kernel.shape))

    def parameter_count(self) -> int:
        """Weights of the model itself (the quantizers' ranges and flags are not model weights)."""
        own = {id(v) for _, _, q in self.algorithm.quantizers() for v in q.variables}
        return int(sum(np.prod(v.shape) for v in self.model.weights if id(v) not in own))

    def module_paths(self, scope: str) -> list[str]:
        return self._prepared.scopes.match(scope)

    def _weight_value(self, key: str) -> Any:
        """What a weight quantizer receives: the kernel through the transforms before it."""
        layer, quantizer = self._layers[key], self.algorithm.weight_quantizers[key]
        value = keras.ops.convert_to_tensor(layer.kernel)
        for transform in transforms_of(layer, "kernel"):
            if transform is quantizer:
                break
            value = transform.call(value)
        return value

    def hessian_traces(
        self, keys: list[str], data_loader: Any, criterion: Any, criterion_fn: Any, precision: PrecisionSettings, reading: Mapping[str, Any]
    ) -> dict[str, float]:
        return hutchinson_traces(
            self.model,
            {key: self._layers[key].kernel for key in keys},
            labelled_batches(data_loader, reading["batch_size"], precision.num_data_points),
            criterion,
            criterion_fn,
            int(precision.iter_number or 0),
            precision.tolerance,
        )

    def evaluate(self, eval_fn: Callable[..., Any], data: Any) -> Any:
        return eval_fn(self.model, data)

    # -- strip and export ---------------------------------------------------------------------------
    def strip(self, model: Any) -> Any:
        """Weights onto their grids (folded), layer inputs through fixed QDQ layers (see the module docstring)."""
        owner = self.algorithm.name
        for _, _, transforms in iter_transforms(model):  # a copy made before a staged group switched on: export it quantized
            for transform in transforms:
                if isinstance(transform, TFFakeQuantizer) and transform.owner == owner:
                    transform.set_enabled(True)
        fold_all(model, owner)
        sites = self.algorithm.activation_sites
        qdq = {id(site): site.quantizer.to_qdq(name=f"{site.name.replace('/', '_')}_input_qdq") for site in sites}
        # the layers of ``model`` (a copy) by the user's layer they copy: auto-generated names may differ between copies
        copies = {id(origin(layer)): (path, layer) for path, layer in iter_layers(model)}
        targets = []
        for site in sites:
            for consumer in site.consumers:
                if id(self._layers[consumer]) not in copies:
                    raise QuantizationError(f"cannot strip quantization: the model being stripped has no copy of layer '{consumer}'")
                targets.append((*copies[id(self._layers[consumer])], qdq[id(site)]))
        direct = {id(layer) for layer in model.layers} if model_style(model) != "subclassed" else set()
        wrapped = [(path, layer, q) for path, layer, q in targets if id(layer) not in direct]
        for _, layer, q in wrapped:
            _wrap_input(layer, q)
        if wrapped:
            object.__setattr__(model, _WRAPPED, [path for path, _, _ in wrapped])
        by_layer = {id(layer): q for _, layer, q in targets if id(layer) in direct}
        if not by_layer:
            return model
        quantized: dict[tuple[int, int], Any] = {}

        def call_function(layer: Any, *args: Any, **kwargs: Any) -> Any:
            q = by_layer.get(id(layer))
            if q is not None and args:
                key = (id(q), id(args[0]))
                if key not in quantized:
                    quantized[key] = q(args[0])
                args = (quantized[key], *args[1:])
            return layer(*args, **kwargs)

        if isinstance(model, keras.Sequential):
            inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
            x = inputs
            for layer in model.layers:
                x = call_function(layer, x)
            rebuilt = keras.Model(inputs, x, name=model.name)
        else:
            rebuilt = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call_function)
        return rebuilt

    def prepare_for_export(self, stripped_model: Any) -> None:
        """Nothing to finish: strip built the quantized model."""

    def export(self, stripped_model: Any, path: Path, **kwargs: Any) -> None:
        wrapped = getattr(stripped_model, _WRAPPED, None)
        if wrapped and path.suffix == ".keras":
            raise ExportError(
                f"a .keras file cannot keep the input quantization of {', '.join(wrapped[:3])} (layers of a subclassed model, or "
                "inside a custom layer or nested model, quantize their inputs through call wrappers); export a SavedModel "
                "(a directory path) instead"
            )
        self.framework.export(stripped_model, path, **kwargs)

    def finish_export(self, path: Path) -> None:
        """Nothing to tidy: the written model is what strip built."""

    # -- reporting ----------------------------------------------------------------------------------
    def coverage(self) -> None:
        """Keras models have no functional matrix products to count: their graph is made of layers."""
        return None


class TFQuantization(QuantizationAlgorithmBase):
    """Quantization-aware training of a ``keras.Model`` (not adaptive: no level to search); see :class:`TFQuantizationOps`."""

    prepared: TFModel
    ops: TFQuantizationOps

    def __init__(self, prepared: TFModel, section: AlgorithmSection) -> None:
        super().__init__(TFQuantizationOps(prepared), section)


def create(prepared: TFModel, section: AlgorithmSection, config: Config) -> TFQuantization:
    """The factory aac-core calls for a ``quantization`` section on a Keras model."""
    return TFQuantization(prepared, section)
