"""A framework-neutral view of a model's computation: which operation feeds which, and what it is.

Backends translate their own graph (``torch.fx`` for PyTorch, the functional graph for Keras) into
this one, once, when a model is prepared. Algorithms then reason about structure - which filters
are tied by a residual addition, which layer consumes a concatenation - without importing any
framework, so the same analysis code serves every backend.

Each :class:`Node` is one operation. Its :class:`Metatype` says what the operation does to the
*channel* dimension, because that is what structured compression cares about; the backend fills in
the typed attributes (:class:`ConvAttributes`, :class:`LinearAttributes` …) and normalises framework
conventions into plain facts (``ConcatAttributes.along_channels`` instead of an axis number).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from aac.core.errors import AacError


class Metatype(enum.Enum):
    """What an operation does, as far as channel-structured compression is concerned."""

    #: a model input (a tensor the caller passes in)
    INPUT = "input"
    #: the model's result; every tensor feeding it leaves the model
    OUTPUT = "output"
    #: convolution or transposed convolution (:class:`ConvAttributes`)
    CONV = "conv"
    #: fully connected layer acting on the last axis (:class:`LinearAttributes`)
    LINEAR = "linear"
    #: batch normalisation: independent per channel (:class:`NormAttributes`)
    BATCH_NORM = "batch_norm"
    #: instance normalisation: independent per channel (:class:`NormAttributes`)
    INSTANCE_NORM = "instance_norm"
    #: group normalisation: statistics shared inside channel groups (:class:`NormAttributes`)
    GROUP_NORM = "group_norm"
    #: layer normalisation: statistics shared across features (:class:`NormAttributes`)
    LAYER_NORM = "layer_norm"
    #: element-wise function of one tensor (activation, dropout, scaling by a constant …)
    ACTIVATION = "activation"
    #: element-wise combination of several tensors (add, sub, mul, div); their channels align
    ELEMENTWISE = "elementwise"
    #: concatenation (:class:`ConcatAttributes`)
    CONCAT = "concat"
    #: spatial pooling or resampling that keeps the channel axis (max/avg pool, upsample)
    POOL = "pool"
    #: reduction over all spatial axes that drops them (global average pooling without keepdim)
    SPATIAL_REDUCE = "spatial_reduce"
    #: flattening of the channel axis with the axes after it (:class:`FlattenAttributes`)
    FLATTEN = "flatten"
    #: reading a tensor's shape, or arithmetic on sizes; it has no tensor output. Which axes of its
    #: input it reads (:class:`ShapeAttributes`) matters: code that reads a channel count breaks when it changes
    SHAPE = "shape"
    #: a stored tensor (parameter or buffer) used directly by an operation (:class:`ConstantAttributes`)
    CONSTANT = "constant"
    #: reordering of axes: permute, transpose, movedim (:class:`PermuteAttributes`)
    PERMUTE = "permute"
    #: a new shape for the same data: view, reshape, flatten of some axes, squeeze, unsqueeze
    #: (:class:`ReshapeAttributes`); algorithms read the input's and output's shapes
    RESHAPE = "reshape"
    #: broadcasting of size-1 axes to a larger shape: expand (:class:`ReshapeAttributes`)
    BROADCAST = "broadcast"
    #: splitting along one axis into several tensors: chunk, split, unbind (:class:`SplitAttributes`);
    #: its value is a tuple, read by :attr:`ITEM` nodes
    SPLIT = "split"
    #: one element of a tuple-valued operation: a split's piece, an attention layer's output (:class:`ItemAttributes`)
    ITEM = "item"
    #: basic indexing of a tensor, ``x[:, 0]`` or ``x[..., ::2, :]`` (:class:`IndexAttributes`)
    INDEX = "index"
    #: multi-head attention with packed query/key/value projections (:class:`AttentionAttributes`); its
    #: value is the output, or a tuple (output, attention weights) read by :attr:`ITEM` nodes, as
    #: PyTorch's ``nn.MultiheadAttention`` returns
    ATTENTION = "attention"
    #: a product of two tensors computed at run time (matmul, bmm, einsum, scaled dot-product attention,
    #: a linear or convolution whose weight is not a layer's) (:class:`MatmulAttributes`)
    MATMUL = "matmul"
    #: anything else; algorithms must assume it mixes channels arbitrarily
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ConvAttributes:
    """A convolution. ``groups == in_channels == out_channels`` is a depthwise convolution."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    groups: int = 1
    transposed: bool = False
    has_bias: bool = True
    #: the axis of its input and output that holds channels, counted from the end (-3 for PyTorch's
    #: NCHW); None when the backend does not say, and algorithms then assume the framework's default
    channel_axis: int | None = None

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels and not self.transposed

    @property
    def is_grouped(self) -> bool:
        """Grouped but not depthwise: its filters see only a slice of the input channels."""
        return self.groups > 1 and not self.is_depthwise

    @property
    def downsamples(self) -> bool:
        return not self.transposed and any(s > 1 for s in self.stride)


@dataclass(frozen=True)
class LinearAttributes:
    in_features: int
    out_features: int
    has_bias: bool = True


@dataclass(frozen=True)
class NormAttributes:
    """A normalisation layer over ``num_channels`` channels (``num_groups`` only for group norm).

    ``params_per_channel``: its parameters per channel when ``affine`` (2: scale and offset; Keras
    layers may have only one of them).
    """

    num_channels: int
    affine: bool = True
    num_groups: int = 1
    params_per_channel: int = 2


@dataclass(frozen=True)
class ConcatAttributes:
    #: True if the inputs are joined along the channel axis (the backend knows its layout)
    along_channels: bool
    #: the axis joined along, counted from the end, when the backend knows it; it decides over
    #: ``along_channels`` once an algorithm has followed the channel axis through permutations
    axis: int | None = None


@dataclass(frozen=True)
class FlattenAttributes:
    """Flattening that starts at the channel axis.

    ``channel_major`` is True when the channel index varies slowest in the result (PyTorch's NCHW:
    feature ``c * H * W + s``) and False when it varies fastest (NHWC: feature ``s * C + c``).
    """

    channel_major: bool


@dataclass(frozen=True)
class ActivationAttributes:
    #: True if the function maps 0 to 0 (ReLU, GELU, scaling), False otherwise (sigmoid, +1)
    preserves_zero: bool


@dataclass(frozen=True)
class ShapeAttributes:
    """Which axes of its input a :attr:`Metatype.SHAPE` node reads, counted from the end.

    None: the whole shape (``x.shape``, ``x.size()``); ``()``: none of them (``x.dim()``, ``x.dtype``,
    arithmetic on sizes already read). A node that picks from a whole shape another node read
    (``x.shape[1]``) gives the axes it picks of that tensor.
    """

    axes: tuple[int, ...] | None = ()


@dataclass(frozen=True)
class ConstantAttributes:
    #: the stored tensor's path in the model (``"encoder.pos_embedding"``); None when the backend cannot name it
    path: str | None = None


@dataclass(frozen=True)
class PermuteAttributes:
    #: output axis ``i`` is input axis ``dims[i]`` (non-negative; ``len(dims)`` is the rank)
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ReshapeAttributes:
    """The sizes as the code writes them, one per output axis: a number written in the code (-1
    included) or None where it is computed at run time. ``sizes`` is None for operations that take
    no sizes (flatten, squeeze, unsqueeze, expand_as). A channel count written as a number does not
    follow pruning, so algorithms must not change the channels it describes.
    """

    sizes: tuple[int | None, ...] | None = None


@dataclass(frozen=True)
class SplitAttributes:
    #: the axis split, counted from the end
    axis: int
    #: the pieces' extents along it
    sizes: tuple[int, ...]
    #: False when the pieces lose the axis (unbind)
    keeps_axis: bool = True


@dataclass(frozen=True)
class ItemAttributes:
    index: int


@dataclass(frozen=True)
class IndexAttributes:
    """Basic indexing: for each input axis, first to last, the output axis it becomes (non-negative)
    or None where an integer index removes it, and whether a slice keeps only part of it."""

    axes: tuple[int | None, ...]
    narrowed: tuple[bool, ...]
    output_rank: int


@dataclass(frozen=True)
class AttentionAttributes:
    """Multi-head attention over the last axis: one packed projection makes queries, keys and values
    (``3 * embed_dim`` rows, each ``num_heads`` blocks of ``head_dim``), an output projection maps
    them back, and the inner width equals the input and output width (``nn.MultiheadAttention``,
    torchvision's window attention).

    :ivar query_tokens: query positions per sample; ``key_tokens`` key positions per sample;
        ``attended`` keys each query attends to - what FLOPs counting needs (None without shapes).
    :ivar params_per_head: entries of per-head tensors (a relative position bias table) per head.
    :ivar problem: why its heads cannot be pruned (an option the layer uses that algorithms do not
        follow), or None.
    """

    embed_dim: int
    num_heads: int
    query_tokens: float | None = None
    key_tokens: float | None = None
    attended: float | None = None
    qkv_bias: bool = True
    out_bias: bool = True
    params_per_head: int = 0
    problem: str | None = None

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


@dataclass(frozen=True)
class MatmulAttributes:
    #: FLOPs per sample (two per multiply-add, as for layers), None without shapes
    flops: float | None


Attributes = (
    ConvAttributes
    | LinearAttributes
    | NormAttributes
    | ConcatAttributes
    | FlattenAttributes
    | ActivationAttributes
    | ShapeAttributes
    | ConstantAttributes
    | PermuteAttributes
    | ReshapeAttributes
    | SplitAttributes
    | ItemAttributes
    | IndexAttributes
    | AttentionAttributes
    | MatmulAttributes
    | None
)


@dataclass(frozen=True)
class Node:
    """One operation of the model.

    :param name: unique within the graph.
    :param metatype: what the operation is (see :class:`Metatype`).
    :param inputs: names of the nodes whose outputs it reads, in argument order (concatenation
        order matters).
    :param layer: path of the layer whose weights the operation uses (``"layer1.0.conv1"``), or
        None for weightless operations. A layer called twice appears in two nodes.
    :param scope: path of the module the operation runs in (``""`` for the model itself).
    :param op: the framework's name for the operation (``"Conv2d"``, ``"add"``, ``"relu"``).
    :param output_shape: the output's shape from a sample forward pass, when one was run.
    """

    name: str
    metatype: Metatype
    inputs: tuple[str, ...] = ()
    layer: str | None = None
    scope: str = ""
    op: str = ""
    attributes: Attributes = None
    output_shape: tuple[int, ...] | None = None

    def describe(self) -> str:
        """Human-readable location for messages: ``'relu' in layer2.0`` or ``layer 'fc' (Linear)``."""
        if self.layer is not None:
            return f"layer '{self.layer}' ({self.op})"
        return f"'{self.op or self.metatype.value}' in {self.scope or 'the model'}"


class GraphError(AacError):
    """A graph handed over by a backend is inconsistent (a bug in that backend, not in the model)."""


class Graph:
    """Nodes in topological order, with look-ups in both directions."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self._by_name: dict[str, Node] = {}
        self._successors: dict[str, list[str]] = {}
        for node in self.nodes:
            if node.name in self._by_name:
                raise GraphError(f"graph has two nodes named '{node.name}'")
            for source in node.inputs:
                if source not in self._by_name:
                    raise GraphError(f"node '{node.name}' reads '{source}', which is not defined before it")
                self._successors[source].append(node.name)
            self._by_name[node.name] = node
            self._successors[node.name] = []

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def node(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"graph has no node '{name}'") from None

    def predecessors(self, name: str) -> list[Node]:
        return [self._by_name[source] for source in self.node(name).inputs]

    def successors(self, name: str) -> list[Node]:
        return [self._by_name[target] for target in self._successors[name]]

    def of_type(self, *metatypes: Metatype) -> list[Node]:
        return [n for n in self.nodes if n.metatype in metatypes]

    def layers(self) -> Mapping[str, list[Node]]:
        """Layer path -> the nodes that call it (more than one for a shared layer), in graph order."""
        table: dict[str, list[Node]] = {}
        for node in self.nodes:
            if node.layer is not None:
                table.setdefault(node.layer, []).append(node)
        return table
