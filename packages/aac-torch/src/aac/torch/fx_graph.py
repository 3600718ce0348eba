"""Translation of a ``torch.fx`` graph into aac's framework-neutral :class:`~aac.core.graph.Graph`.

The tables below say what each module class, function and tensor method does to channels. Anything
not listed becomes :attr:`~aac.core.graph.Metatype.UNKNOWN`, which algorithms treat as "mixes
channels arbitrarily" - a safe default: an unknown operation can stop compression of the layers
around it, never make it wrong.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
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
from torch import fx, nn

#: element-wise modules with f(0) == 0 (a zeroed channel stays zero)
_ZERO_PRESERVING_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh,
    nn.Hardtanh, nn.Hardswish, nn.Softsign, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
)
#: element-wise modules with f(0) != 0
_ZERO_CHANGING_MODULES: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Hardsigmoid, nn.Softplus, nn.LogSigmoid)
_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.Upsample, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d,
)

_ZERO_PRESERVING_CALLS: frozenset[Any] = frozenset({
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu,
    F.mish, F.hardswish, F.hardtanh, torch.tanh, F.tanh, F.dropout, F.dropout1d, F.dropout2d, F.dropout3d,
    torch.clone, torch.neg, operator.neg,
    "relu", "relu_", "tanh", "tanh_", "contiguous", "clone", "float", "half", "double", "neg", "detach",
})
_ZERO_CHANGING_CALLS: frozenset[Any] = frozenset({
    torch.sigmoid, F.sigmoid, F.hardsigmoid, F.softplus, torch.exp, "sigmoid", "sigmoid_", "exp",
})
_POOL_CALLS: frozenset[Any] = frozenset({
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d, F.interpolate,
})
_ARITHMETIC: dict[Any, str] = {
    operator.add: "add", operator.iadd: "add", torch.add: "add", "add": "add", "add_": "add",
    operator.sub: "sub", operator.isub: "sub", torch.sub: "sub", "sub": "sub", "sub_": "sub",
    operator.mul: "mul", operator.imul: "mul", torch.mul: "mul", "mul": "mul", "mul_": "mul",
    operator.truediv: "div", operator.itruediv: "div", torch.div: "div", "div": "div", "div_": "div",
}
_CONCAT_CALLS: frozenset[Any] = frozenset({torch.cat, torch.concat, torch.concatenate})
_FLATTEN_CALLS: frozenset[Any] = frozenset({torch.flatten, "flatten"})
_RESHAPE_CALLS: frozenset[Any] = frozenset({"view", "reshape", torch.reshape})
_REDUCE_CALLS: frozenset[Any] = frozenset({torch.mean, torch.sum, torch.amax, "mean", "sum", "amax"})
_SHAPE_CALLS: frozenset[Any] = frozenset({"size", "dim", getattr, len})

Classified = tuple[Metatype, Attributes]
Handler = Callable[[fx.Node, dict[str, Metatype]], Classified]


def build_graph(gm: fx.GraphModule) -> Graph:
    """The neutral graph of a traced (and, if shapes are wanted, shape-propagated) module."""
    modules = dict(gm.named_modules())
    nodes: list[Node] = []
    kinds: dict[str, Metatype] = {}
    for fx_node in gm.graph.nodes:
        metatype, attributes = _classify(fx_node, modules, kinds)
        kinds[fx_node.name] = metatype
        is_module = fx_node.op == "call_module"
        nodes.append(Node(
            name=fx_node.name,
            metatype=metatype,
            inputs=tuple(n.name for n in _input_nodes(fx_node)),
            layer=str(fx_node.target) if is_module else None,
            scope=_scope(fx_node),
            op=_op_name(fx_node, modules),
            attributes=attributes,
            output_shape=_shape(fx_node),
        ))
    return Graph(nodes)


def _input_nodes(fx_node: fx.Node) -> Iterator[fx.Node]:
    """Every graph value the node reads, in argument order, repeats included (``cat([x, x])``)."""
    return _flatten_nodes((fx_node.args, fx_node.kwargs))


def _flatten_nodes(value: Any) -> Iterator[fx.Node]:
    if isinstance(value, fx.Node):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten_nodes(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten_nodes(item)


def _scope(fx_node: fx.Node) -> str:
    if fx_node.op == "call_module":
        return str(fx_node.target).rpartition(".")[0]
    stack = fx_node.meta.get("nn_module_stack")
    return str(next(reversed(stack))) if stack else ""


def _op_name(fx_node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if fx_node.op == "call_module":
        return type(modules[str(fx_node.target)]).__name__
    if fx_node.op == "call_function":
        return getattr(fx_node.target, "__name__", str(fx_node.target))
    return str(fx_node.target) if fx_node.op in ("call_method", "get_attr") else fx_node.op


def _shape(fx_node: fx.Node) -> tuple[int, ...] | None:
    meta = fx_node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else None


def _ndim(fx_node: Any) -> int | None:
    shape = _shape(fx_node) if isinstance(fx_node, fx.Node) else None
    return len(shape) if shape is not None else None


def _arg(fx_node: fx.Node, index: int, name: str, default: Any) -> Any:
    if len(fx_node.args) > index:
        return fx_node.args[index]
    return fx_node.kwargs.get(name, default)


def _classify(fx_node: fx.Node, modules: dict[str, nn.Module], kinds: dict[str, Metatype]) -> Classified:
    if fx_node.op == "placeholder":
        return Metatype.INPUT, None
    if fx_node.op == "output":
        return Metatype.OUTPUT, None
    if fx_node.op == "get_attr":
        return Metatype.CONSTANT, None
    if fx_node.op == "call_module":
        return _classify_module(modules[str(fx_node.target)])
    target = fx_node.target
    if fx_node.op == "call_function" and target is operator.getitem:
        source = fx_node.args[0]
        return (Metatype.SHAPE, None) if isinstance(source, fx.Node) and kinds.get(source.name) is Metatype.SHAPE else (Metatype.UNKNOWN, None)
    handler = _CALL_HANDLERS.get(target) if _hashable(target) else None
    return handler(fx_node, kinds) if handler is not None else (Metatype.UNKNOWN, None)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _classify_module(module: nn.Module) -> Classified:
    if isinstance(module, nn.modules.conv._ConvNd):
        return Metatype.CONV, ConvAttributes(
            in_channels=module.in_channels,
            out_channels=module.out_channels,
            kernel_size=tuple(module.kernel_size),
            stride=tuple(module.stride),
            groups=module.groups,
            transposed=module.transposed,
            has_bias=module.bias is not None,
        )
    if isinstance(module, nn.Linear):
        return Metatype.LINEAR, LinearAttributes(module.in_features, module.out_features, module.bias is not None)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return Metatype.BATCH_NORM, NormAttributes(module.num_features, module.affine)
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return Metatype.INSTANCE_NORM, NormAttributes(module.num_features, module.affine)
    if isinstance(module, nn.GroupNorm):
        return Metatype.GROUP_NORM, NormAttributes(module.num_channels, module.affine, module.num_groups)
    if isinstance(module, nn.LayerNorm):
        return Metatype.LAYER_NORM, NormAttributes(int(torch.Size(module.normalized_shape).numel()), module.elementwise_affine)
    if isinstance(module, _ZERO_PRESERVING_MODULES) or (isinstance(module, nn.PReLU) and module.num_parameters == 1):
        return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=True)
    if isinstance(module, _ZERO_CHANGING_MODULES):
        return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=False)
    if isinstance(module, _POOL_MODULES):
        return Metatype.POOL, None
    if isinstance(module, nn.Flatten):
        return _flatten(module.start_dim, module.end_dim, None)
    return Metatype.UNKNOWN, None


def _flatten(start_dim: int, end_dim: int, ndim: int | None) -> Classified:
    start = start_dim % ndim if ndim is not None else start_dim
    ends_last = end_dim == -1 or (ndim is not None and end_dim % ndim == ndim - 1)
    if start == 1 and ends_last:
        return Metatype.FLATTEN, FlattenAttributes(channel_major=True)
    return Metatype.UNKNOWN, None


def _tensor_inputs(fx_node: fx.Node, kinds: dict[str, Metatype]) -> list[Any]:
    """Positional operands that are tensors (graph values other than shape reads)."""
    return [a for a in fx_node.args if isinstance(a, fx.Node) and kinds.get(a.name) is not Metatype.SHAPE]


def _arithmetic(fx_node: fx.Node, kinds: dict[str, Metatype]) -> Classified:
    op = _ARITHMETIC[fx_node.target]
    tensors = len(_tensor_inputs(fx_node, kinds))
    if tensors == 0:  # arithmetic on sizes, e.g. x.size(1) * 2
        return Metatype.SHAPE, None
    if tensors >= 2:
        return Metatype.ELEMENTWISE, None
    first_is_tensor = isinstance(fx_node.args[0], fx.Node)
    other = fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs.get("other")
    if op == "mul":
        preserves = True
    elif op == "div":
        preserves = first_is_tensor
    else:  # adding or subtracting a constant moves zeros, unless the constant is zero
        preserves = isinstance(other, (int, float)) and other == 0
    return Metatype.ACTIVATION, ActivationAttributes(preserves_zero=preserves)


def _concat(fx_node: fx.Node, kinds: dict[str, Metatype]) -> Classified:
    dim = _arg(fx_node, 1, "dim", 0)
    tensors = fx_node.args[0]
    ndim = _ndim(tensors[0]) if isinstance(tensors, (list, tuple)) and tensors else None
    along = dim == 1 or (ndim is not None and dim % ndim == 1)
    return Metatype.CONCAT, ConcatAttributes(along_channels=along)


def _flatten_call(fx_node: fx.Node, kinds: dict[str, Metatype]) -> Classified:
    return _flatten(_arg(fx_node, 1, "start_dim", 0), _arg(fx_node, 2, "end_dim", -1), _ndim(fx_node.args[0]))


def _reshape(fx_node: fx.Node, kinds: dict[str, Metatype]) -> Classified:
    """``x.view(x.size(0), -1)`` and friends flatten from the channel axis; other reshapes are unknown."""
    dims = fx_node.args[1:] if fx_node.op == "call_method" else _arg(fx_node, 1, "shape", ())
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    if len(dims) == 2 and dims[1] == -1:
        return Metatype.FLATTEN, FlattenAttributes(channel_major=True)
    source, out = fx_node.args[0], _shape(fx_node)
    in_shape = _shape(source) if isinstance(source, fx.Node) else None
    if in_shape and out and len(out) == 2 and out[0] == in_shape[0] and len(in_shape) > 2:
        return Metatype.FLATTEN, FlattenAttributes(channel_major=True)
    return Metatype.UNKNOWN, None


def _reduce(fx_node: fx.Node, kinds: dict[str, Metatype]) -> Classified:
    """A mean/sum/max over spatial axes only keeps channels; without ``keepdim`` it drops the spatial axes."""
    dims = _arg(fx_node, 1, "dim", None)
    keepdim = _arg(fx_node, 2, "keepdim", False)
    ndim = _ndim(fx_node.args[0])
    dims = (dims,) if isinstance(dims, int) else tuple(dims) if isinstance(dims, (list, tuple)) else ()
    if not dims or not all(isinstance(d, int) for d in dims):
        return Metatype.UNKNOWN, None
    if ndim is None:  # without shapes only the ubiquitous global pooling of NCHW is recognised
        ndim = 4 if set(dims) in ({2, 3}, {-1, -2}) else None
    if ndim is None:
        return Metatype.UNKNOWN, None
    axes = {d % ndim for d in dims}
    if 0 in axes or 1 in axes:
        return Metatype.UNKNOWN, None
    if keepdim:
        return Metatype.POOL, None
    return (Metatype.SPATIAL_REDUCE, None) if axes == set(range(2, ndim)) else (Metatype.POOL, None)


def _activation(preserves_zero: bool) -> Handler:
    return lambda fx_node, kinds: (Metatype.ACTIVATION, ActivationAttributes(preserves_zero=preserves_zero))


def _constant(metatype: Metatype) -> Handler:
    return lambda fx_node, kinds: (metatype, None)


#: call_function targets and call_method names -> how to classify the call
_CALL_HANDLERS: dict[Any, Handler] = {
    **dict.fromkeys(_ARITHMETIC, _arithmetic),
    **dict.fromkeys(_ZERO_PRESERVING_CALLS, _activation(True)),
    **dict.fromkeys(_ZERO_CHANGING_CALLS, _activation(False)),
    **dict.fromkeys(_POOL_CALLS, _constant(Metatype.POOL)),
    **dict.fromkeys(_CONCAT_CALLS, _concat),
    **dict.fromkeys(_FLATTEN_CALLS, _flatten_call),
    **dict.fromkeys(_RESHAPE_CALLS, _reshape),
    **dict.fromkeys(_REDUCE_CALLS, _reduce),
    **dict.fromkeys(_SHAPE_CALLS, _constant(Metatype.SHAPE)),
}
