"""Translation of a Keras model into aac's framework-neutral :class:`~aac.core.graph.Graph`.

Keras records every call of a layer or ``keras.ops`` function on symbolic tensors as a node
(``KerasTensor._keras_history``). For Sequential and functional models those nodes exist already;
a subclassed model's ``call`` is run once on fresh symbolic tensors to record them (this is what
"tracing" means here: no TensorFlow graph is built, so the result names the user's layers, not TF
operations). Nested Sequential/functional models are expanded in place, and so are custom layers
that hold sub-layers (a residual block) when their ``call`` can be traced the same way; a custom
layer that cannot, or one selected by ``ignored_scopes``, stays one opaque UNKNOWN operation.

The tables below say what each layer class and ``keras.ops`` operation does to channels. Anything not
listed becomes UNKNOWN, which algorithms treat as "mixes channels arbitrarily" - a safe default.
A layer with a fused ``activation=`` becomes two nodes (``"dense"`` then ``"dense.relu"``), because
whether the activation maps 0 to 0 decides whether a pruned channel stays zero.

Keras idioms are mapped onto what the neutral graph knows, so that its analysis and cost model need
nothing Keras-specific: a separable convolution is two convolutions (its depthwise part, layer
``"sep"``, and its pointwise part, layer ``"sep" + POINTWISE``); a ``Dense`` on a tensor of rank > 2 is
a 1x1 convolution (it acts on the channels); a global pool that is only reshaped back to ``(1, ..., 1, C)``
(squeeze-excitation) is a pool that keeps its dimensions; InceptionResNetV2's ``CustomScaleLayer`` is an
addition; norm layers report their parameters per channel (``center`` and ``scale``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

import keras
from keras import layers as L
from keras import tree

from aac.core.graph import (
    ActivationAttributes,
    Attributes,
    ConcatAttributes,
    ConvAttributes,
    FlattenAttributes,
    Graph,
    LinearAttributes,
    Metatype,
    Node,
    NormAttributes,
)
from aac.tf.layers import SEPARATOR, InputSpec, ModelTraceError, iter_layers, model_style, recorded_input_shapes, sublayers
from aac.tf.scopes import ScopeSelection

Classified = tuple[Metatype, Attributes]

# -- activation functions by name (keras.activations and keras.ops) --------------------------
_ZERO_PRESERVING = frozenset(
    {
        "relu",
        "relu6",
        "leaky_relu",
        "elu",
        "selu",
        "gelu",
        "silu",
        "swish",
        "tanh",
        "mish",
        "hard_silu",
        "hard_swish",
        "softsign",
        "linear",
        "celu",
        "glu",
        "sparse_plus",
        "squareplus",
        "tanh_shrink",
        "hard_tanh",
        "soft_shrink",
        "hard_shrink",
        "threshold",
        "negative",
        "abs",
        "square",
        "cast",
        "identity",
    }
)
_ZERO_CHANGING = frozenset({"sigmoid", "hard_sigmoid", "softplus", "exponential", "exp", "log_sigmoid", "sparse_sigmoid"})

_ACTIVATION_LAYERS = (L.ReLU, L.LeakyReLU, L.ELU, L.PReLU)  # all map 0 to 0
_IDENTITY_LAYERS = (
    L.Dropout,
    L.SpatialDropout1D,
    L.SpatialDropout2D,
    L.SpatialDropout3D,
    L.GaussianNoise,
    L.GaussianDropout,
    L.AlphaDropout,
    L.ActivityRegularization,
    L.Identity,
)
_POOL_LAYERS = (
    L.MaxPooling1D,
    L.MaxPooling2D,
    L.MaxPooling3D,
    L.AveragePooling1D,
    L.AveragePooling2D,
    L.AveragePooling3D,
    L.UpSampling1D,
    L.UpSampling2D,
    L.UpSampling3D,
    L.ZeroPadding1D,
    L.ZeroPadding2D,
    L.ZeroPadding3D,
    L.Cropping1D,
    L.Cropping2D,
    L.Cropping3D,
)
_GLOBAL_POOL_LAYERS = (
    L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D,
    L.GlobalAveragePooling3D,
    L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D,
    L.GlobalMaxPooling3D,
)
_MERGE_LAYERS = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
_TRANSPOSED_CONV = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_DEPTHWISE_CONV = (L.DepthwiseConv1D, L.DepthwiseConv2D)
_SEPARABLE_CONV = (L.SeparableConv1D, L.SeparableConv2D)
_CONV = (L.Conv1D, L.Conv2D, L.Conv3D)

#: suffix of the layer path the graph gives the pointwise part of a separable convolution (``"sep.pointwise"``)
POINTWISE = ".pointwise"

_ARITHMETIC_OPS = {
    "Add": "add",
    "Subtract": "sub",
    "Multiply": "mul",
    "Divide": "div",
    "TrueDivide": "div",
    "Maximum": "max",
    "Minimum": "min",
}
_REDUCE_OPS = frozenset({"Mean", "Max", "Sum", "Amax"})


def _channels_last() -> bool:
    return keras.config.image_data_format() == "channels_last"


def _activation_name(fn: Any) -> str:
    name = getattr(fn, "__name__", "") or type(fn).__name__
    return name.lower()


def _activation(name: str) -> Classified:
    if name in _ZERO_PRESERVING:
        return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=True)
    if name in _ZERO_CHANGING:
        return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=False)
    return Metatype.UNKNOWN, None  # softmax, log_softmax and anything unknown mix channels


def _axis_is_channels(axis: Any, ndim: int | None) -> bool:
    if not isinstance(axis, int):
        return False
    if ndim is None:
        return axis == -1 if _channels_last() else axis == 1
    channel = ndim - 1 if (_channels_last() or ndim == 2) else 1
    return axis % ndim == channel


def _tuple(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),)


def _classify_layer(layer: Any, in_shape: tuple[Any, ...] | None) -> Classified:
    """What a (leaf) Keras layer does to channels."""
    if isinstance(layer, L.InputLayer):
        return Metatype.INPUT, None
    if isinstance(layer, _DEPTHWISE_CONV):
        channels = int(layer.kernel.shape[-2])
        return Metatype.CONV, ConvAttributes(
            channels,
            channels * int(layer.depth_multiplier),
            _tuple(layer.kernel_size),
            _tuple(layer.strides),
            groups=channels,
            has_bias=bool(layer.use_bias),
        )
    if isinstance(layer, _SEPARABLE_CONV):  # its depthwise part; _Builder.operation adds the pointwise part after it
        channels = int(layer.depthwise_kernel.shape[-2])
        return Metatype.CONV, ConvAttributes(
            channels,
            channels * int(layer.depth_multiplier),
            _tuple(layer.kernel_size),
            _tuple(layer.strides),
            groups=channels,
            has_bias=False,
        )
    if isinstance(layer, _TRANSPOSED_CONV):
        return Metatype.CONV, ConvAttributes(
            int(layer.kernel.shape[-1]),
            int(layer.filters),
            _tuple(layer.kernel_size),
            _tuple(layer.strides),
            transposed=True,
            has_bias=bool(layer.use_bias),
        )
    if isinstance(layer, _CONV):
        groups = int(getattr(layer, "groups", 1) or 1)
        return Metatype.CONV, ConvAttributes(
            int(layer.kernel.shape[-2]) * groups,
            int(layer.filters),
            _tuple(layer.kernel_size),
            _tuple(layer.strides),
            groups=groups,
            has_bias=bool(layer.use_bias),
        )
    if isinstance(layer, L.Dense):
        if in_shape is not None and len(in_shape) > 2 and _channels_last():  # acts on the channel axis: a 1x1 convolution
            ones = (1,) * (len(in_shape) - 2)
            return Metatype.CONV, ConvAttributes(int(layer.kernel.shape[0]), int(layer.units), ones, ones, has_bias=bool(layer.use_bias))
        return Metatype.LINEAR, LinearAttributes(int(layer.kernel.shape[0]), int(layer.units), bool(layer.use_bias))
    if isinstance(layer, L.BatchNormalization):
        return Metatype.BATCH_NORM, NormAttributes(
            int(layer.moving_mean.shape[0]), bool(layer.center or layer.scale), params_per_channel=_norm_params(layer)
        )
    if isinstance(layer, L.GroupNormalization):
        channels = int(in_shape[-1]) if in_shape and in_shape[-1] is not None else 0
        return Metatype.GROUP_NORM, NormAttributes(channels, bool(layer.center or layer.scale), int(layer.groups), _norm_params(layer))
    if isinstance(layer, L.LayerNormalization):
        axes = _tuple(layer.axis)
        size = math.prod(int(in_shape[a]) for a in axes) if in_shape and all(in_shape[a] is not None for a in axes) else 0
        return Metatype.LAYER_NORM, NormAttributes(size, bool(layer.center or layer.scale), params_per_channel=_norm_params(layer))
    if isinstance(layer, _ACTIVATION_LAYERS):
        return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=True)
    if isinstance(layer, L.Activation):
        return _activation(_activation_name(layer.activation))
    if isinstance(layer, _IDENTITY_LAYERS):
        return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=True)
    if isinstance(layer, L.Rescaling):
        return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=_is_zero(layer.offset))
    if isinstance(layer, _POOL_LAYERS):
        return Metatype.POOL, None
    if isinstance(layer, _GLOBAL_POOL_LAYERS):
        return (Metatype.POOL, None) if layer.keepdims else (Metatype.SPATIAL_REDUCE, None)
    if isinstance(layer, L.Flatten):
        return Metatype.FLATTEN, FlattenAttributes(channel_major=layer.data_format == "channels_first")
    if isinstance(layer, L.Reshape):
        if len(layer.target_shape) == 1:
            return Metatype.FLATTEN, FlattenAttributes(channel_major=not _channels_last())
        return Metatype.UNKNOWN, None
    if isinstance(layer, _MERGE_LAYERS) or _is_keras_scale_sum(layer):
        return Metatype.ELEMENTWISE, None
    if isinstance(layer, L.Concatenate):
        return Metatype.CONCAT, ConcatAttributes(along_channels=_axis_is_channels(layer.axis, len(in_shape) if in_shape else None))
    return Metatype.UNKNOWN, None


def _norm_params(layer: Any) -> int:
    """Parameters per channel of a Keras norm layer: its offset (``center``) and its scale (``scale``)."""
    return int(bool(layer.center)) + int(bool(layer.scale))


def _is_keras_scale_sum(layer: Any) -> bool:
    """InceptionResNetV2's ``CustomScaleLayer``: ``inputs[0] + inputs[1] * scale``, an addition of aligned channels."""
    return type(layer).__name__ == "CustomScaleLayer" and type(layer).__module__.startswith("keras.")


def _is_zero(value: Any) -> bool:
    try:
        return all(float(v) == 0.0 for v in tree.flatten(value))
    except (TypeError, ValueError):
        return False


def _classify_op(op: Any, node: Any, in_shape: tuple[Any, ...] | None) -> Classified:
    """What a ``keras.ops`` operation (not a layer) does to channels."""
    kind = type(op).__name__
    tensors = node.arguments.keras_tensors
    if kind in _ARITHMETIC_OPS:
        if len(tensors) >= 2:
            return Metatype.ELEMENTWISE, None
        arithmetic = _ARITHMETIC_OPS[kind]
        others = [a for a in tree.flatten(node.arguments.args) if not isinstance(a, keras.KerasTensor)]
        first_is_tensor = bool(node.arguments.args) and isinstance(node.arguments.args[0], keras.KerasTensor)
        if arithmetic == "mul":
            preserves = True
        elif arithmetic == "div":
            preserves = first_is_tensor
        else:  # adding a constant (or max/min with one) moves zeros unless it is zero
            preserves = bool(others) and all(_is_zero(o) for o in others)
        return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=preserves)
    name = "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")
    if name in _ZERO_PRESERVING or name in _ZERO_CHANGING:
        return _activation(name)
    if kind == "Concatenate":
        return Metatype.CONCAT, ConcatAttributes(
            along_channels=_axis_is_channels(getattr(op, "axis", 0), len(in_shape) if in_shape else None)
        )
    if kind == "Reshape":
        shape = tuple(getattr(op, "newshape", ()) or ())
        if len(shape) == 2 and (shape[0] in (-1, None) or shape[1] == -1):
            return Metatype.FLATTEN, FlattenAttributes(channel_major=not _channels_last())
        return Metatype.UNKNOWN, None
    if kind in _REDUCE_OPS and in_shape is not None:
        axis = getattr(op, "axis", None)
        axes = _tuple(axis) if axis is not None else ()
        ndim = len(in_shape)
        channel = ndim - 1 if _channels_last() else 1
        spatial = set(range(1, ndim)) - {channel}
        normalised = {a % ndim for a in axes}
        if not normalised or 0 in normalised or channel in normalised or not normalised <= spatial:
            return Metatype.UNKNOWN, None
        if getattr(op, "keepdims", False) or normalised != spatial:
            return Metatype.POOL, None
        return Metatype.SPATIAL_REDUCE, None
    return Metatype.UNKNOWN, None


# ---------------------------------------------------------------------------------------------
# walking the recorded Keras nodes
# ---------------------------------------------------------------------------------------------


def _producer(tensor: Any) -> Any:
    """The Keras node that produced ``tensor`` (None for a graph input)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None or history.operation is None:
        return None
    return history.operation._inbound_nodes[history.node_index]


def _topological(outputs: Sequence[Any], bound: dict[int, str]) -> list[Any]:
    """Keras nodes reachable from ``outputs`` without crossing ``bound`` tensors, producers first."""
    order: list[Any] = []
    visited: set[int] = set()
    stack: list[tuple[Any, bool]] = [(n, False) for n in reversed([_producer(t) for t in outputs if id(t) not in bound]) if n is not None]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for tensor in reversed(node.arguments.keras_tensors):
            if id(tensor) in bound:
                continue
            parent = _producer(tensor)
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


@contextlib.contextmanager
def _restoring_nodes(model: Any) -> Iterator[None]:
    """Forget the Keras nodes that tracing adds to the model's layers (they would linger in ``layer._inbound_nodes``)."""
    layers = [layer for _, layer in iter_layers(model)] + [model]
    sizes = [(layer, len(layer._inbound_nodes), len(layer._outbound_nodes)) for layer in layers]
    try:
        yield
    finally:
        for layer, inbound, outbound in sizes:
            del layer._inbound_nodes[inbound:]
            del layer._outbound_nodes[outbound:]


def _symbolic_call(layer: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
    """Run ``layer.call`` on symbolic tensors; return its flattened outputs."""
    kwargs = dict(kwargs)
    if getattr(layer, "_call_has_training_arg", False) and kwargs.get("training") is None:
        kwargs["training"] = False
    outputs = layer.call(*args, **kwargs)
    flat = tree.flatten(outputs)
    if not flat or not all(isinstance(t, keras.KerasTensor) for t in flat):
        raise TypeError("call() did not return Keras tensors")
    return flat


def _is_composite(layer: Any) -> bool:
    """A user layer that holds sub-layers (a block): worth expanding. Keras' own layers stay whole."""
    return bool(sublayers(layer)) and not type(layer).__module__.startswith("keras.")


class _Builder:
    def __init__(self, paths: dict[int, str], opaque: ScopeSelection, batch: int) -> None:
        self.paths = paths
        self.opaque = opaque
        self.batch = batch
        self.nodes: list[Node] = []
        self._names: set[str] = set()

    def unique(self, name: str) -> str:
        candidate, index = name, 0
        while candidate in self._names:
            index += 1
            candidate = f"{name}:{index}"
        self._names.add(candidate)
        return candidate

    def emit(self, name: str, metatype: Metatype, inputs: Sequence[str], **fields: Any) -> str:
        name = self.unique(name)
        self.nodes.append(Node(name=name, metatype=metatype, inputs=tuple(inputs), **fields))
        return name

    def shape(self, tensor: Any) -> tuple[int, ...] | None:
        dims = tuple(getattr(tensor, "shape", ()) or ())
        if not dims:
            return None
        dims = (self.batch if dims[0] is None else dims[0], *dims[1:])
        return tuple(int(d) for d in dims) if all(d is not None for d in dims) else None

    def path(self, layer: Any, prefix: str) -> str:
        return self.paths.get(id(layer), f"{prefix}{layer.name}")

    def walk(self, inputs: dict[int, str], outputs: Sequence[Any], prefix: str, scope: str) -> list[str]:
        """Emit the nodes between bound ``inputs`` (tensor id -> node name) and ``outputs``; return the outputs' names."""
        names: dict[tuple[int, int], list[str]] = {}

        def name_of(tensor: Any) -> str:
            if id(tensor) in inputs:
                return inputs[id(tensor)]
            history = getattr(tensor, "_keras_history", None)
            if history is None or history.operation is None:
                inputs[id(tensor)] = self.emit(f"{prefix}constant", Metatype.CONSTANT, (), scope=scope)
                return inputs[id(tensor)]
            produced = names[(id(history.operation), history.node_index)]
            return produced[min(history.tensor_index, len(produced) - 1)]

        for node in _topological(outputs, inputs):
            op = node.operation
            key = (id(op), op._inbound_nodes.index(node))
            sources = [name_of(t) for t in node.arguments.keras_tensors]
            names[key] = self.operation(op, node, sources, prefix, scope)
        return [name_of(t) for t in outputs]

    def operation(self, op: Any, node: Any, sources: list[str], prefix: str, scope: str) -> list[str]:
        first = node.arguments.keras_tensors[0] if node.arguments.keras_tensors else None
        in_shape = tuple(first.shape) if first is not None else None
        out_shape = self.shape(node.outputs[0]) if node.outputs else None
        if not isinstance(op, keras.layers.Layer):  # a keras.ops operation
            metatype, attributes = _classify_op(op, node, in_shape)
            name = self.emit(
                f"{prefix}{op.name}",
                metatype,
                sources,
                scope=scope,
                op=type(op).__name__.lower(),
                attributes=attributes,
                output_shape=out_shape,
            )
            return [name] * max(1, len(node.outputs))
        path = self.path(op, prefix)
        if isinstance(op, L.InputLayer):
            return [self.emit(path, Metatype.INPUT, (), scope=scope, op="InputLayer", output_shape=out_shape)]
        if path not in self.opaque:
            expanded = self.expand(op, node, sources, path)
            if expanded is not None:
                return expanded
        metatype, attributes = _classify_layer(op, in_shape) if path not in self.opaque else (Metatype.UNKNOWN, None)
        layer_scope = path.rpartition(SEPARATOR)[0]
        if isinstance(op, _SEPARABLE_CONV) and isinstance(attributes, ConvAttributes):
            return self.separable(op, path, layer_scope, attributes, sources, out_shape, len(node.outputs))
        name = self.emit(
            path, metatype, sources, layer=path, scope=layer_scope, op=type(op).__name__, attributes=attributes, output_shape=out_shape
        )
        activation = getattr(op, "activation", None)
        if metatype in (Metatype.CONV, Metatype.LINEAR) and activation is not None:
            act_name = _activation_name(activation)
            if act_name != "linear":
                act_type, act_attributes = _activation(act_name)
                name = self.emit(
                    f"{name}.{act_name}", act_type, (name,), scope=path, op=act_name, attributes=act_attributes, output_shape=out_shape
                )
        return [name] * max(1, len(node.outputs))

    def separable(
        self, op: Any, path: str, scope: str, depthwise: ConvAttributes, sources: list[str], out_shape: tuple[int, ...] | None, outputs: int
    ) -> list[str]:
        """A separable convolution as the two convolutions it computes: its depthwise part (layer ``path``) and its
        pointwise part (layer ``path + POINTWISE``), so that it is counted and pruned as what it is."""
        middle = (
            None
            if out_shape is None
            else (*out_shape[:-1], depthwise.out_channels)
            if _channels_last()
            else (out_shape[0], depthwise.out_channels, *out_shape[2:])
        )
        name = self.emit(
            path, Metatype.CONV, sources, layer=path, scope=scope, op=type(op).__name__, attributes=depthwise, output_shape=middle
        )
        ones = (1,) * len(depthwise.kernel_size)
        pointwise = ConvAttributes(depthwise.out_channels, int(op.filters), ones, ones, has_bias=bool(op.use_bias))
        name = self.emit(
            f"{path}{POINTWISE}",
            Metatype.CONV,
            (name,),
            layer=f"{path}{POINTWISE}",
            scope=scope,
            op=f"{type(op).__name__}.pointwise",
            attributes=pointwise,
            output_shape=out_shape,
        )
        act_name = _activation_name(op.activation)
        if act_name != "linear":
            act_type, act_attributes = _activation(act_name)
            name = self.emit(
                f"{path}.{act_name}", act_type, (name,), scope=path, op=act_name, attributes=act_attributes, output_shape=out_shape
            )
        return [name] * max(1, outputs)

    def expand(self, op: Any, node: Any, sources: list[str], path: str) -> list[str] | None:
        """Expand a nested Sequential/functional model or a traceable composite layer; None to keep it whole."""
        if isinstance(op, keras.Model) and model_style(op) != "subclassed" and getattr(op, "inputs", None):
            inner_inputs = tree.flatten(op.inputs)
            if len(inner_inputs) != len(sources):
                return None
            bound = {id(t): s for t, s in zip(inner_inputs, sources, strict=True)}
            return self.walk(bound, tree.flatten(op.outputs), f"{path}{SEPARATOR}", path)
        if not _is_composite(op):
            return None
        fresh: dict[int, str] = {}
        source_iter = iter(sources)

        def refresh(value: Any) -> Any:
            if isinstance(value, keras.KerasTensor):
                twin = keras.KerasTensor(value.shape, dtype=value.dtype)
                fresh[id(twin)] = next(source_iter)
                return twin
            return value

        args = tree.map_structure(refresh, node.arguments.args)
        kwargs = tree.map_structure(refresh, node.arguments.kwargs)
        mark = len(self.nodes), set(self._names)
        try:
            outputs = _symbolic_call(op, args, kwargs)
            return self.walk(fresh, outputs, f"{path}{SEPARATOR}", path)
        except Exception:  # untraceable block: keep it as one opaque operation
            del self.nodes[mark[0] :]
            self._names = mark[1]
            return None


def trace_graph(model: Any, inputs: Sequence[InputSpec], opaque: ScopeSelection | None = None) -> Graph:
    """The neutral graph of a built Keras model.

    :param inputs: input specs (from ``input_info``); a subclassed model needs them unless it recorded
        its input shapes when it was built.
    :param opaque: layers to keep as single operations (usually the ``ignored_scopes`` selection).
    """
    opaque = opaque or ScopeSelection(frozenset())
    paths = {id(layer): path for path, layer in iter_layers(model)}
    batch = next((int(s.shape[0]) for s in inputs if s.shape and s.shape[0] is not None), 1)
    builder = _Builder(paths, opaque, batch)
    style = model_style(model)
    with _restoring_nodes(model):
        if style != "subclassed":
            model_inputs, model_outputs = tree.flatten(model.inputs), tree.flatten(model.outputs)
            bound = {}
            for tensor in model_inputs:
                producer = _producer(tensor)
                layer = producer.operation if producer is not None else None
                name = builder.path(layer, "") if layer is not None else "input"
                bound[id(tensor)] = builder.emit(name, Metatype.INPUT, (), op="InputLayer", output_shape=builder.shape(tensor))
            outputs = builder.walk(bound, model_outputs, "", "")
        else:
            specs = list(inputs) or [InputSpec(tuple(s)) for s in (recorded_input_shapes(model) or [])]
            if not specs:
                raise ModelTraceError(
                    f"cannot trace the subclassed model {type(model).__name__}: its input shapes are unknown; add "
                    '"input_info": {"sample_size": [1, ...]} to the config'
                )
            symbolic = [spec.symbolic() for spec in specs]
            bound = {
                id(t): builder.emit(
                    "input" if len(symbolic) == 1 else f"input_{i}", Metatype.INPUT, (), op="input", output_shape=builder.shape(t)
                )
                for i, t in enumerate(symbolic)
            }
            try:
                flat = _symbolic_call(model, [symbolic[0] if len(symbolic) == 1 else symbolic], {})
            except Exception as exc:
                raise ModelTraceError(_trace_failure(model, exc)) from exc
            outputs = builder.walk(bound, flat, "", "")
    builder.emit("output", Metatype.OUTPUT, outputs, op="output")
    return Graph(_keep_pooled_dims(builder.nodes))


def _keep_pooled_dims(nodes: list[Node]) -> list[Node]:
    """A global pool whose only reader reshapes it back to ``(1, ..., 1, C)`` (squeeze-excitation blocks: EfficientNet's
    ``Reshape((1, 1, C))``) is a pool that keeps its dimensions: both become POOL, so the channels are followed through."""
    readers: dict[str, int] = {}
    for node in nodes:
        for source in node.inputs:
            readers[source] = readers.get(source, 0) + 1
    by_name = {node.name: node for node in nodes}
    pooled: set[str] = set()
    for node in nodes:
        source = by_name.get(node.inputs[0]) if len(node.inputs) == 1 else None
        if (
            node.metatype is Metatype.UNKNOWN
            and source is not None
            and source.metatype is Metatype.SPATIAL_REDUCE
            and readers.get(source.name) == 1
            and _is_unsqueezed(source.output_shape, node.output_shape)
        ):
            pooled.update((node.name, source.name))
    return [dataclasses.replace(node, metatype=Metatype.POOL, attributes=None) if node.name in pooled else node for node in nodes]


def _is_unsqueezed(flat: tuple[int, ...] | None, shape: tuple[int, ...] | None) -> bool:
    """``shape`` is ``flat`` (batch, C) with spatial dimensions of size 1 inserted where the layout keeps them."""
    if flat is None or shape is None or len(flat) != 2 or len(shape) < 3 or shape[0] != flat[0]:
        return False
    channels, spatial = (shape[-1], shape[1:-1]) if _channels_last() else (shape[1], shape[2:])
    return channels == flat[1] and all(extent == 1 for extent in spatial)


def _trace_failure(model: Any, exc: Exception) -> str:
    name = type(model).__name__
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    detail = detail.split(" You are likely doing")[0].rstrip(" .:")
    hint = ""
    if "KerasTensor" in str(exc) or "symbolic" in str(exc).lower():
        hint = (
            " Its call() applies TensorFlow functions (tf.*) or Python control flow to tensors, which cannot be traced"
            " symbolically: use Keras layers and keras.ops in call(),"
        )
    return (
        f"cannot build the graph of the subclassed model {name} (filter pruning needs it): tracing {name}.call() on "
        f"symbolic inputs failed: {detail}.{hint or ' Make call() work on symbolic Keras tensors (Keras layers and keras.ops only),'} "
        "or build the model with the functional API or as a keras.Sequential. Algorithms that need no graph "
        "(sparsity, quantization) work on this model as it is."
    )
