"""Translation of a ``torch.fx`` graph into aac's framework-neutral :class:`~aac.core.graph.Graph`.

The tables below say what each module class, function and tensor method does to channels. Anything
not listed becomes :attr:`~aac.core.graph.Metatype.UNKNOWN`, which algorithms treat as "mixes
channels arbitrarily" - a safe default: an unknown operation can stop compression of the layers
around it, never make it wrong.

Shapes from the sample forward pass (``input_info``) make most of the translation exact: axes are
normalised (counted from the end, as broadcasting aligns them), reshapes and splits carry the sizes
the code wrote, and products of tensors get their FLOPs. A functional layer that uses a module's
weights (``F.linear(x, self.qkv.weight, self.qkv.bias)``, ``F.layer_norm`` in torchvision's
``LayerNorm2d``) becomes a node of that module, like a call of the module itself.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import fx, nn

from aac.core.graph import (
    ActivationAttributes,
    AttentionAttributes,
    Attributes,
    ConcatAttributes,
    ConstantAttributes,
    ConvAttributes,
    FlattenAttributes,
    Graph,
    IndexAttributes,
    ItemAttributes,
    LinearAttributes,
    MatmulAttributes,
    Metatype,
    Node,
    NormAttributes,
    PermuteAttributes,
    ReshapeAttributes,
    ShapeAttributes,
    SplitAttributes,
)
from aac.torch.attention import attention_spec

#: element-wise modules with f(0) == 0 (a zeroed channel stays zero)
_ZERO_PRESERVING_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Softshrink,
    nn.Hardshrink,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
#: element-wise modules with f(0) != 0
_ZERO_CHANGING_MODULES: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Hardsigmoid, nn.Softplus, nn.LogSigmoid)
_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.Upsample,
    nn.ZeroPad1d,
    nn.ZeroPad2d,
    nn.ZeroPad3d,
)

_ZERO_PRESERVING_CALLS: frozenset[Any] = frozenset(
    {
        F.relu,
        F.relu_,
        torch.relu,
        torch.relu_,
        F.relu6,
        F.leaky_relu,
        F.elu,
        F.selu,
        F.celu,
        F.gelu,
        F.silu,
        F.mish,
        F.hardswish,
        F.hardtanh,
        torch.tanh,
        F.tanh,
        F.dropout,
        F.dropout1d,
        F.dropout2d,
        F.dropout3d,
        F.alpha_dropout,
        F.feature_alpha_dropout,
        torch.clone,
        torch.neg,
        operator.neg,
        "relu",
        "relu_",
        "tanh",
        "tanh_",
        "contiguous",
        "clone",
        "float",
        "half",
        "double",
        "bfloat16",
        "to",
        "type_as",
        "neg",
        "detach",
        "gelu",
        "silu",
    }
)
_ZERO_CHANGING_CALLS: frozenset[Any] = frozenset(
    {
        torch.sigmoid,
        F.sigmoid,
        F.hardsigmoid,
        F.softplus,
        torch.exp,
        "sigmoid",
        "sigmoid_",
        "exp",
    }
)
_POOL_CALLS: frozenset[Any] = frozenset(
    {
        F.max_pool1d,
        F.max_pool2d,
        F.max_pool3d,
        F.avg_pool1d,
        F.avg_pool2d,
        F.avg_pool3d,
        F.adaptive_avg_pool1d,
        F.adaptive_avg_pool2d,
        F.adaptive_avg_pool3d,
        F.adaptive_max_pool1d,
        F.adaptive_max_pool2d,
        F.adaptive_max_pool3d,
        F.interpolate,
    }
)
_ARITHMETIC: dict[Any, str] = {
    operator.add: "add",
    operator.iadd: "add",
    torch.add: "add",
    "add": "add",
    "add_": "add",
    operator.sub: "sub",
    operator.isub: "sub",
    torch.sub: "sub",
    "sub": "sub",
    "sub_": "sub",
    operator.mul: "mul",
    operator.imul: "mul",
    torch.mul: "mul",
    "mul": "mul",
    "mul_": "mul",
    operator.truediv: "div",
    operator.itruediv: "div",
    torch.div: "div",
    "div": "div",
    "div_": "div",
}
_CONCAT_CALLS: frozenset[Any] = frozenset({torch.cat, torch.concat, torch.concatenate})
_FLATTEN_CALLS: frozenset[Any] = frozenset({torch.flatten, "flatten"})
_RESHAPE_CALLS: frozenset[Any] = frozenset({"view", "reshape", torch.reshape})
_SQUEEZE_CALLS: frozenset[Any] = frozenset({torch.squeeze, torch.unsqueeze, "squeeze", "unsqueeze"})
_PERMUTE_CALLS: frozenset[Any] = frozenset({torch.permute, "permute"})
_TRANSPOSE_CALLS: frozenset[Any] = frozenset({torch.transpose, torch.swapaxes, "transpose", "swapaxes"})
_EXPAND_CALLS: frozenset[Any] = frozenset({"expand", "expand_as", torch.broadcast_to, "broadcast_to"})
_SPLIT_CALLS: frozenset[Any] = frozenset({torch.chunk, torch.split, torch.unbind, "chunk", "split", "unbind"})
_REDUCE_CALLS: frozenset[Any] = frozenset({torch.mean, torch.sum, torch.amax, "mean", "sum", "amax"})
_MATMUL_CALLS: frozenset[Any] = frozenset(
    {
        torch.matmul,
        operator.matmul,
        torch.bmm,
        torch.mm,
        "matmul",
        "bmm",
        "mm",
        torch.einsum,
    }
)
_CONV_CALLS: dict[Any, int] = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}
#: functions of packages aac does not import, by ``module.name`` (torchvision wraps them as single fx calls)
_STOCHASTIC_DEPTH = "torchvision.ops.stochastic_depth.stochastic_depth"  # identity in eval; per-sample 0/scale in training
_PATCH_MERGING = "torchvision.models.swin_transformer._patch_merging_pad"  # 4 spatial phases joined along channels


@dataclass(frozen=True)
class _Op:
    """What a call is: metatype, attributes, the layer whose weights it uses, and (rarely) its inputs as the analysis should see them."""

    metatype: Metatype
    attributes: Attributes = None
    layer: str | None = None
    inputs: tuple[str, ...] | None = None


_UNKNOWN = _Op(Metatype.UNKNOWN)
_SHAPE = _Op(Metatype.SHAPE, ShapeAttributes(()))


def build_graph(gm: fx.GraphModule) -> Graph:
    """The neutral graph of a traced (and, if shapes are wanted, shape-propagated) module."""
    context = _Context(gm)
    nodes: list[Node] = []
    for fx_node in gm.graph.nodes:
        op = context.classify(fx_node)
        context.kinds[fx_node.name] = op.metatype
        layer = str(fx_node.target) if fx_node.op == "call_module" else op.layer
        nodes.append(
            Node(
                name=fx_node.name,
                metatype=op.metatype,
                inputs=op.inputs if op.inputs is not None else tuple(n.name for n in _input_nodes(fx_node)),
                layer=layer,
                scope=_scope(fx_node),
                op=_op_name(fx_node, context.modules),
                attributes=op.attributes,
                output_shape=context.shape(fx_node),
            )
        )
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


def _qualified_name(target: Any) -> str:
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}"


def _arg(fx_node: fx.Node, index: int, name: str, default: Any) -> Any:
    if len(fx_node.args) > index:
        return fx_node.args[index]
    return fx_node.kwargs.get(name, default)


V = TypeVar("V")


def get_if_hashable(table: Mapping[Any, V], key: Any) -> V | None:
    """``table.get(key)``, or None for a key that cannot be hashed (a traced call's target may be any object)."""
    try:
        return table.get(key)
    except TypeError:
        return None


def _negative(axis: Any, rank: int | None) -> int | None:
    """``axis`` counted from the end (-1: the last), or None if it cannot be told."""
    if not isinstance(axis, int):
        return None
    if axis < 0:
        return axis
    return axis - rank if rank is not None and axis < rank else None


class _Context:
    """What classification needs besides the node: modules, stored tensors, shapes, the kinds so far."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.kinds: dict[str, Metatype] = {}
        #: nodes that read a whole shape (``x.shape``) -> the rank of that tensor
        self.whole_shapes: dict[str, int | None] = {}
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        first = self.shape(placeholders[0]) if placeholders else None
        #: samples in the shape-propagation pass (FLOPs are per sample)
        self.batch = first[0] if first else 1

    # -- shapes --------------------------------------------------------------------------
    def shape(self, value: Any) -> tuple[int, ...] | None:
        if not isinstance(value, fx.Node):
            return None
        if value.op == "get_attr":
            tensor = self.stored(value)
            return tuple(tensor.shape) if tensor is not None else None
        shape = getattr(value.meta.get("tensor_meta"), "shape", None)
        return tuple(int(d) for d in shape) if shape is not None else None

    def rank(self, value: Any) -> int | None:
        shape = self.shape(value)
        return len(shape) if shape is not None else None

    def is_tensor(self, fx_node: fx.Node) -> bool | None:
        """Whether the node's result was a tensor in the sample pass (None without one)."""
        kind = fx_node.meta.get("type")
        return None if kind is None else issubclass(kind, torch.Tensor)

    def is_sequence(self, fx_node: fx.Node) -> bool:
        """Whether the node's result was a tuple or list in the sample pass."""
        kind = fx_node.meta.get("type")
        return kind is not None and issubclass(kind, (tuple, list))

    def stored(self, fx_node: Any) -> torch.Tensor | None:
        """The parameter or buffer a ``get_attr`` node reads."""
        if not isinstance(fx_node, fx.Node) or fx_node.op != "get_attr":
            return None
        owner, _, name = str(fx_node.target).rpartition(".")
        value = getattr(self.modules.get(owner), name, None)
        return value if isinstance(value, torch.Tensor) else None

    def owner(self, fx_node: Any, name: str) -> str | None:
        """The module whose tensor ``name`` a ``get_attr`` node reads (``"attn.qkv"`` for ``attn.qkv.weight``)."""
        if self.stored(fx_node) is None:
            return None
        owner, _, attribute = str(fx_node.target).rpartition(".")
        return owner if attribute == name and owner in self.modules else None

    def tensor_inputs(self, fx_node: fx.Node) -> list[fx.Node]:
        """Positional operands that are tensors (graph values other than shape reads)."""
        return [a for a in fx_node.args if isinstance(a, fx.Node) and self.kinds.get(a.name) is not Metatype.SHAPE]

    # -- classification ------------------------------------------------------------------
    def classify(self, fx_node: fx.Node) -> _Op:
        if fx_node.op == "placeholder":
            return _Op(Metatype.INPUT)
        if fx_node.op == "output":
            return _Op(Metatype.OUTPUT)
        if fx_node.op == "get_attr":
            return _Op(Metatype.CONSTANT, ConstantAttributes(str(fx_node.target) if self.stored(fx_node) is not None else None))
        if fx_node.op == "call_module":
            return self._module(fx_node, self.modules[str(fx_node.target)])
        target = fx_node.target
        if fx_node.op == "call_function" and target is operator.getitem:
            return self._getitem(fx_node)
        handler = get_if_hashable(_CALL_HANDLERS, target)
        if handler is None and fx_node.op == "call_function":
            handler = _NAMED_HANDLERS.get(_qualified_name(target))
        if handler is not None:
            return handler(self, fx_node)
        return _SHAPE if self._only_sizes(fx_node) else _UNKNOWN

    def _only_sizes(self, fx_node: fx.Node) -> bool:
        """An unknown call on sizes alone that returns no tensor (``h // p``, ``torch._assert(h == 224)``)."""
        inputs = list(_input_nodes(fx_node))
        if not inputs or any(self.kinds.get(n.name) is not Metatype.SHAPE for n in inputs):
            return False
        return self.is_tensor(fx_node) is False

    def _module(self, fx_node: fx.Node, module: nn.Module) -> _Op:
        spec = attention_spec(module)
        if spec is not None:
            return self._attention(fx_node, module, spec)
        if isinstance(module, nn.modules.conv._ConvNd):
            return _Op(
                Metatype.CONV,
                ConvAttributes(
                    in_channels=module.in_channels,
                    out_channels=module.out_channels,
                    kernel_size=tuple(module.kernel_size),
                    stride=tuple(module.stride),
                    groups=module.groups,
                    transposed=module.transposed,
                    has_bias=module.bias is not None,
                    channel_axis=-len(module.kernel_size) - 1,
                ),
            )
        if isinstance(module, nn.Linear):
            return _Op(Metatype.LINEAR, LinearAttributes(module.in_features, module.out_features, module.bias is not None))
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return _Op(Metatype.BATCH_NORM, NormAttributes(module.num_features, module.affine))
        if isinstance(module, nn.modules.instancenorm._InstanceNorm):
            return _Op(Metatype.INSTANCE_NORM, NormAttributes(module.num_features, module.affine))
        if isinstance(module, nn.GroupNorm):
            return _Op(Metatype.GROUP_NORM, NormAttributes(module.num_channels, module.affine, module.num_groups))
        if isinstance(module, nn.LayerNorm):
            parameters = int(module.weight is not None) + int(module.bias is not None)
            return _Op(
                Metatype.LAYER_NORM,
                NormAttributes(math.prod(module.normalized_shape), module.weight is not None, params_per_channel=parameters),
            )
        if isinstance(module, _ZERO_PRESERVING_MODULES) or (isinstance(module, nn.PReLU) and module.num_parameters == 1):
            return _Op(Metatype.ACTIVATION, ActivationAttributes(preserves_zero=True))
        if isinstance(module, _ZERO_CHANGING_MODULES):
            return _Op(Metatype.ACTIVATION, ActivationAttributes(preserves_zero=False))
        if isinstance(module, _POOL_MODULES):
            return _Op(Metatype.POOL)
        if isinstance(module, nn.Flatten):
            return self._flatten(fx_node, module.start_dim, module.end_dim)
        if isinstance(module, nn.Unflatten):
            return self._unflattened(fx_node, module.dim, module.unflattened_size)
        return _UNKNOWN

    def _attention(self, fx_node: fx.Node, module: nn.Module, spec: Any) -> _Op:
        query = _arg(fx_node, 0, "query", None)
        key = _arg(fx_node, 1, "key", query)
        shapes = self.shape(query), self.shape(key)
        geometry = spec.geometry(module, *shapes) if None not in shapes else (None, None, None)
        problem = spec.problem(module)
        if _arg(fx_node, 4, "need_weights", False) and not _arg(fx_node, 6, "average_attn_weights", True):
            problem = problem or "its attention weights per head are returned (average_attn_weights=False)"
        qkv, out = spec.qkv.tensors(module), spec.out.tensors(module)
        return _Op(
            Metatype.ATTENTION,
            AttentionAttributes(
                embed_dim=spec.width(module),
                num_heads=spec.heads(module),
                query_tokens=geometry[0],
                key_tokens=geometry[1],
                attended=geometry[2],
                qkv_bias=qkv[2] is not None,
                out_bias=out[2] is not None,
                params_per_head=spec.head_parameters(module),
                problem=problem,
            ),
        )

    def _getitem(self, fx_node: fx.Node) -> _Op:
        source, index = fx_node.args[0], fx_node.args[1]
        if not isinstance(source, fx.Node):
            return _UNKNOWN
        if self.kinds.get(source.name) is Metatype.SHAPE:
            return _Op(Metatype.SHAPE, ShapeAttributes(self._picked_axes(source, index)))
        if self.kinds.get(source.name) in (Metatype.SPLIT, Metatype.ATTENTION) or self.is_sequence(source):
            return _Op(Metatype.ITEM, ItemAttributes(index)) if isinstance(index, int) else _UNKNOWN
        return self._index(fx_node, source, index)

    def _picked_axes(self, source: fx.Node, index: Any) -> tuple[int, ...] | None:
        """Axes ``shape[index]`` picks when ``source`` is a whole shape (``x.shape``); () for other size arithmetic."""
        if source.name not in self.whole_shapes:
            return ()
        rank = self.whole_shapes[source.name]
        if rank is None:
            return None
        picked = [index] if isinstance(index, int) else list(range(rank))[index] if isinstance(index, slice) else None
        if picked is None:
            return None
        return tuple(p % rank - rank for p in picked)

    def _index(self, fx_node: fx.Node, source: fx.Node, index: Any) -> _Op:
        """Basic indexing (integers, slices, ``None``, ``...``); tensor indices are unknown."""
        rank, out_rank = self.rank(source), self.rank(fx_node)
        items = list(index) if isinstance(index, tuple) else [index]
        if rank is None or out_rank is None or any(not (isinstance(i, (int, slice)) or i is None or i is Ellipsis) for i in items):
            return _UNKNOWN
        if Ellipsis in items:
            at = items.index(Ellipsis)
            fill = rank - sum(1 for i in items if i is not None and i is not Ellipsis)
            items[at : at + 1] = [slice(None)] * fill
        items += [slice(None)] * (rank - sum(1 for i in items if i is not None))
        axes: list[int | None] = []
        narrowed: list[bool] = []
        position = 0
        shape = self.shape(source) or ()
        for item in items:
            if item is None:
                position += 1
                continue
            axis = len(axes)
            if isinstance(item, int):
                axes.append(None)
                narrowed.append(True)
                continue
            axes.append(position)
            bounds = (item.start, item.stop, item.step)
            if all(b is None or isinstance(b, int) for b in bounds):
                narrowed.append(len(range(*item.indices(shape[axis]))) != shape[axis])
            else:  # a bound computed by the model (a crop to another tensor's size): take it as narrowing
                narrowed.append(True)
            position += 1
        return _Op(Metatype.INDEX, IndexAttributes(tuple(axes), tuple(narrowed), out_rank))

    def _flatten(self, fx_node: fx.Node, start_dim: int, end_dim: int) -> _Op:
        rank = self.rank(fx_node.args[0] if fx_node.args else None)
        start = start_dim % rank if rank is not None else start_dim
        ends_last = end_dim == -1 or (rank is not None and end_dim % rank == rank - 1)
        if start == 1 and ends_last:
            return _Op(Metatype.FLATTEN, FlattenAttributes(channel_major=True))
        return self._reshaped(fx_node, None)

    def _unflattened(self, fx_node: fx.Node, dim: Any, sizes: Any) -> _Op:
        """``unflatten(dim, sizes)``: a reshape whose written sizes are ``sizes`` at ``dim`` (a channel shuffle may start so)."""
        rank = self.rank(fx_node.args[0] if fx_node.args else None)
        if rank is None or not isinstance(dim, int) or not isinstance(sizes, (list, tuple)):
            return self._reshaped(fx_node, None)
        at = dim % rank
        written = tuple(s if isinstance(s, int) else None for s in sizes)
        return self._reshaped(fx_node, (None,) * at + written + (None,) * (rank - at - 1))

    def _reshaped(self, fx_node: fx.Node, sizes: tuple[int | None, ...] | None) -> _Op:
        """A reshape the analysis follows through the input and output shapes (it needs both)."""
        source = fx_node.args[0] if fx_node.args else None
        if self.shape(source) is None or self.shape(fx_node) is None:
            return _UNKNOWN
        return _Op(Metatype.RESHAPE, ReshapeAttributes(sizes))


# ------------------------------------------------------------------------------------------
# call handlers: (context, node) -> what the call is
# ------------------------------------------------------------------------------------------

Handler = Callable[[_Context, fx.Node], _Op]


def _arithmetic(ctx: _Context, fx_node: fx.Node) -> _Op:
    op = _ARITHMETIC[fx_node.target]
    tensors = len(ctx.tensor_inputs(fx_node))
    if tensors == 0:  # arithmetic on sizes, e.g. x.size(1) * 2
        return _SHAPE
    if tensors >= 2:
        return _Op(Metatype.ELEMENTWISE)
    first_is_tensor = isinstance(fx_node.args[0], fx.Node)
    other = fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs.get("other")
    if op == "mul":
        preserves = True
    elif op == "div":
        preserves = first_is_tensor
    else:  # adding or subtracting a constant moves zeros, unless the constant is zero
        preserves = isinstance(other, (int, float)) and other == 0
    return _Op(Metatype.ACTIVATION, ActivationAttributes(preserves_zero=preserves))


def _concat(ctx: _Context, fx_node: fx.Node) -> _Op:
    dim = _arg(fx_node, 1, "dim", 0)
    tensors = fx_node.args[0]
    rank = ctx.rank(tensors[0]) if isinstance(tensors, (list, tuple)) and tensors else None
    along = dim == 1 or (rank is not None and dim % rank == 1)
    return _Op(Metatype.CONCAT, ConcatAttributes(along_channels=along, axis=_negative(dim, rank)))


def _flatten_call(ctx: _Context, fx_node: fx.Node) -> _Op:
    return ctx._flatten(fx_node, _arg(fx_node, 1, "start_dim", 0), _arg(fx_node, 2, "end_dim", -1))


def _written_sizes(ctx: _Context, dims: Sequence[Any]) -> tuple[int | None, ...]:
    """Sizes as written: numbers stay, values computed at run time (shape reads) become None."""
    return tuple(d if isinstance(d, int) else None for d in dims)


def _reshape(ctx: _Context, fx_node: fx.Node) -> _Op:
    """``x.view(x.size(0), -1)`` flattens from the channel axis; other reshapes need shapes to be followed."""
    dims = fx_node.args[1:] if fx_node.op == "call_method" else _arg(fx_node, 1, "shape", ())
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    if len(dims) == 2 and dims[1] == -1:
        return _Op(Metatype.FLATTEN, FlattenAttributes(channel_major=True))
    source, out = fx_node.args[0], ctx.shape(fx_node)
    in_shape = ctx.shape(source)
    if in_shape and out and len(out) == 2 and out[0] == in_shape[0] and len(in_shape) > 2:
        return _Op(Metatype.FLATTEN, FlattenAttributes(channel_major=True))
    return ctx._reshaped(fx_node, _written_sizes(ctx, dims))


def _unflatten(ctx: _Context, fx_node: fx.Node) -> _Op:
    return ctx._unflattened(fx_node, _arg(fx_node, 1, "dim", None), _arg(fx_node, 2, "sizes", None))


def _squeeze(ctx: _Context, fx_node: fx.Node) -> _Op:
    return ctx._reshaped(fx_node, None)


def _permute(ctx: _Context, fx_node: fx.Node) -> _Op:
    dims = fx_node.args[1:] if fx_node.op == "call_method" else _arg(fx_node, 1, "dims", ())
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    if not all(isinstance(d, int) for d in dims):
        return _UNKNOWN
    rank = len(dims)
    return _Op(Metatype.PERMUTE, PermuteAttributes(tuple(d % rank for d in dims)))


def _transpose(ctx: _Context, fx_node: fx.Node) -> _Op:
    rank = ctx.rank(fx_node.args[0])
    a, b = _arg(fx_node, 1, "dim0", None), _arg(fx_node, 2, "dim1", None)
    if rank is None or not isinstance(a, int) or not isinstance(b, int):
        return _UNKNOWN
    dims = list(range(rank))
    dims[a % rank], dims[b % rank] = dims[b % rank], dims[a % rank]
    return _Op(Metatype.PERMUTE, PermuteAttributes(tuple(dims)))


def _expand(ctx: _Context, fx_node: fx.Node) -> _Op:
    if ctx.shape(fx_node) is None:
        return _UNKNOWN
    if fx_node.target == "expand":
        dims = fx_node.args[1:]
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = dims[0]
        return _Op(Metatype.BROADCAST, ReshapeAttributes(_written_sizes(ctx, dims)))
    return _Op(Metatype.BROADCAST, ReshapeAttributes(None))


def _split(ctx: _Context, fx_node: fx.Node) -> _Op:
    source = fx_node.args[0]
    metas = fx_node.meta.get("tensor_meta")
    rank = ctx.rank(source)
    if rank is None or not ctx.is_sequence(fx_node):
        return _UNKNOWN
    name = getattr(fx_node.target, "__name__", fx_node.target)
    default = 0
    axis = _arg(fx_node, 1, "dim", default) if name == "unbind" else _arg(fx_node, 2, "dim", default)
    axis = _negative(axis, rank)
    if axis is None:
        return _UNKNOWN
    if name == "unbind":
        return _Op(Metatype.SPLIT, SplitAttributes(axis, tuple(1 for _ in metas), keeps_axis=False))
    return _Op(Metatype.SPLIT, SplitAttributes(axis, tuple(int(m.shape[axis]) for m in metas)))


def _reduce(ctx: _Context, fx_node: fx.Node) -> _Op:
    """A mean/sum/max over spatial axes only keeps channels; without ``keepdim`` it drops the spatial axes."""
    dims = _arg(fx_node, 1, "dim", None)
    keepdim = _arg(fx_node, 2, "keepdim", False)
    rank = ctx.rank(fx_node.args[0])
    dims = (dims,) if isinstance(dims, int) else tuple(dims) if isinstance(dims, (list, tuple)) else ()
    if not dims or not all(isinstance(d, int) for d in dims):
        return _UNKNOWN
    if rank is None:  # without shapes only the ubiquitous global pooling of NCHW is recognised
        rank = 4 if set(dims) in ({2, 3}, {-1, -2}) else None
    if rank is None:
        return _UNKNOWN
    axes = {d % rank for d in dims}
    if 0 in axes or 1 in axes:
        return _UNKNOWN
    if keepdim:
        return _Op(Metatype.POOL)
    return _Op(Metatype.SPATIAL_REDUCE) if axes == set(range(2, rank)) else _Op(Metatype.POOL)


#: tensor attributes that say nothing about sizes
_METADATA = frozenset({"ndim", "dtype", "device", "is_cuda", "requires_grad", "layout"})


def _shape_read(ctx: _Context, fx_node: fx.Node) -> _Op:
    """``x.size(1)``, ``x.shape``, ``x.dim()``, ``len(x)``: which axes of ``x`` are read."""
    source = fx_node.args[0] if fx_node.args else None
    rank = ctx.rank(source)
    name = getattr(fx_node.target, "__name__", fx_node.target)
    axes: tuple[int | None, ...] | None
    if name == "size":
        dim = _arg(fx_node, 1, "dim", None)
        axes = None if dim is None else (_negative(dim, rank),)
    elif name == "getattr":
        attribute = fx_node.args[1]
        if attribute not in _METADATA and attribute != "shape":
            return _UNKNOWN  # x.T, x.mT, x.real ... are tensors
        axes = None if attribute == "shape" else ()
    elif name == "len":
        axes = (_negative(0, rank),)
    else:
        axes = ()
    if axes is None or None in axes:
        ctx.whole_shapes[fx_node.name] = rank
        return _Op(Metatype.SHAPE, ShapeAttributes(None))
    return _Op(Metatype.SHAPE, ShapeAttributes(tuple(a for a in axes if a is not None)))


def _functional_linear(ctx: _Context, fx_node: fx.Node) -> _Op:
    """``F.linear(x, m.weight, m.bias)`` is module ``m`` at work; with any other weight a product of tensors."""
    weight, bias = _arg(fx_node, 1, "weight", None), _arg(fx_node, 2, "bias", None)
    owner = ctx.owner(weight, "weight")
    if owner is not None and (bias is None or ctx.owner(bias, "bias") == owner):
        out_features, in_features = ctx.stored(weight).shape  # type: ignore[union-attr]
        return _Op(Metatype.LINEAR, LinearAttributes(int(in_features), int(out_features), bias is not None), layer=owner)
    return _matmul(ctx, fx_node)


def _functional_conv(ctx: _Context, fx_node: fx.Node) -> _Op:
    weight, bias = _arg(fx_node, 1, "weight", None), _arg(fx_node, 2, "bias", None)
    owner = ctx.owner(weight, "weight")
    stored = ctx.stored(weight)
    stride = _arg(fx_node, 3, "stride", 1)
    groups = _arg(fx_node, 6, "groups", 1)
    spatial = _CONV_CALLS[fx_node.target]
    if owner is None or stored is None or not isinstance(groups, int) or (bias is not None and ctx.owner(bias, "bias") != owner):
        return _matmul(ctx, fx_node)
    stride = tuple(stride) if isinstance(stride, (list, tuple)) else (stride,) * spatial
    return _Op(
        Metatype.CONV,
        ConvAttributes(
            in_channels=int(stored.shape[1]) * groups,
            out_channels=int(stored.shape[0]),
            kernel_size=tuple(stored.shape[2:]),
            stride=stride,
            groups=groups,
            has_bias=bias is not None,
            channel_axis=-spatial - 1,
        ),
        layer=owner,
    )


def _functional_layer_norm(ctx: _Context, fx_node: fx.Node) -> _Op:
    """``F.layer_norm(x, shape, m.weight, m.bias)`` (torchvision's ``LayerNorm2d``) is module ``m``."""
    shape = _arg(fx_node, 1, "normalized_shape", ())
    weight, bias = _arg(fx_node, 2, "weight", None), _arg(fx_node, 3, "bias", None)
    owner = ctx.owner(weight, "weight")
    if owner is None or (bias is not None and ctx.owner(bias, "bias") != owner) or not all(isinstance(d, int) for d in shape):
        return _UNKNOWN
    return _Op(Metatype.LAYER_NORM, NormAttributes(math.prod(shape), True, params_per_channel=1 + int(bias is not None)), layer=owner)


def _matmul(ctx: _Context, fx_node: fx.Node) -> _Op:
    """A product of tensors: FLOPs from the shapes (two per multiply-add, per sample)."""
    out = ctx.shape(fx_node)
    if out is None:
        return _Op(Metatype.MATMUL, MatmulAttributes(None))
    name = getattr(fx_node.target, "__name__", fx_node.target)
    operands = [ctx.shape(a) for a in _input_nodes(fx_node)]
    if name == "einsum":
        equation = str(fx_node.args[0]).replace(" ", "")
        sizes = {
            label: extent
            for spec, shape in zip(equation.split("->")[0].split(","), operands, strict=False)
            if shape is not None
            for label, extent in zip(spec, shape, strict=False)
        }
        products = math.prod(sizes.values())
    elif name == "scaled_dot_product_attention":  # two products: queries x keys, weights x values
        query, key, value = operands[:3]
        assert query is not None and key is not None and value is not None
        products = math.prod(query[:-1]) * key[-2] * (query[-1] + value[-1])
    elif name in ("linear", "conv1d", "conv2d", "conv3d"):
        weight = operands[1]
        assert weight is not None
        products = math.prod(out) * math.prod(weight[1:]) if name != "linear" else math.prod(out) * weight[-1]
    else:
        first = operands[0]
        assert first is not None
        products = math.prod(out) * first[-1]
    return _Op(Metatype.MATMUL, MatmulAttributes(2.0 * products / ctx.batch))


def _activation(preserves_zero: bool) -> Handler:
    return lambda ctx, fx_node: _Op(Metatype.ACTIVATION, ActivationAttributes(preserves_zero=preserves_zero))


def _constant(metatype: Metatype) -> Handler:
    return lambda ctx, fx_node: _Op(metatype)


def _patch_merging(ctx: _Context, fx_node: fx.Node) -> _Op:
    """torchvision's Swin patch merging: four spatial phases of ``x`` joined along the (last) channel axis."""
    source = fx_node.args[0]
    assert isinstance(source, fx.Node)
    return _Op(Metatype.CONCAT, ConcatAttributes(along_channels=True, axis=-1), inputs=(source.name,) * 4)


#: call_function targets and call_method names -> how to classify the call
_CALL_HANDLERS: dict[Any, Handler] = {
    **dict.fromkeys(_ARITHMETIC, _arithmetic),
    **dict.fromkeys(_ZERO_PRESERVING_CALLS, _activation(True)),
    **dict.fromkeys(_ZERO_CHANGING_CALLS, _activation(False)),
    **dict.fromkeys(_POOL_CALLS, _constant(Metatype.POOL)),
    **dict.fromkeys(_CONCAT_CALLS, _concat),
    **dict.fromkeys(_FLATTEN_CALLS, _flatten_call),
    **dict.fromkeys(_RESHAPE_CALLS, _reshape),
    **dict.fromkeys(_SQUEEZE_CALLS, _squeeze),
    **dict.fromkeys((torch.unflatten, "unflatten"), _unflatten),
    **dict.fromkeys(_PERMUTE_CALLS, _permute),
    **dict.fromkeys(_TRANSPOSE_CALLS, _transpose),
    **dict.fromkeys(_EXPAND_CALLS, _expand),
    **dict.fromkeys(_SPLIT_CALLS, _split),
    **dict.fromkeys(_REDUCE_CALLS, _reduce),
    **dict.fromkeys(_MATMUL_CALLS, _matmul),
    **dict.fromkeys(_CONV_CALLS, _functional_conv),
    **dict.fromkeys(("size", "dim", getattr, len), _shape_read),
    F.linear: _functional_linear,
    F.layer_norm: _functional_layer_norm,
    F.scaled_dot_product_attention: _matmul,
}
#: functions of other packages, by ``module.name``
_NAMED_HANDLERS: dict[str, Handler] = {
    _STOCHASTIC_DEPTH: _activation(True),
    _PATCH_MERGING: _patch_merging,
}
