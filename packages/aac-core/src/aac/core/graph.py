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
    #: reading a tensor's shape; it has no tensor output and does not constrain channels
    SHAPE = "shape"
    #: a stored tensor (parameter or buffer) used directly by an operation
    CONSTANT = "constant"
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
    """A normalisation layer over ``num_channels`` channels (``num_groups`` only for group norm)."""

    num_channels: int
    affine: bool = True
    num_groups: int = 1


@dataclass(frozen=True)
class ConcatAttributes:
    #: True if the inputs are joined along the channel axis (the backend knows its layout)
    along_channels: bool


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


Attributes = ConvAttributes | LinearAttributes | NormAttributes | ConcatAttributes | FlattenAttributes | ActivationAttributes | None


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
