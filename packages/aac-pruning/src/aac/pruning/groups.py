"""Which filters must be pruned together, found on the framework-neutral graph.

Removing filter ``c`` of a convolution removes channel ``c`` of its output tensor, so every layer
that sees that channel must agree: a residual addition ties the channels of all layers feeding it,
a depthwise convolution and a batch norm carry the channel through, a concatenation shifts it, a
flatten turns it into a block of features of the next fully connected layer. This module follows
channels through the graph once, in topological order, and answers:

* the **groups**: sets of producer layers (convolutions, linear layers, attention layers) whose
  filters are one channel space and are pruned as a unit - with the structure their consumers
  impose: a grouped convolution needs each of its groups to keep as many channels as the others
  (:attr:`PruningGroup.parts`), an attention layer loses whole heads (:attr:`PruningGroup.block`);
* for each touched layer, how its output channels (producers, followers such as norms, depthwise
  convolutions and stored per-channel tensors like a layer scale) and its input channels
  (consumers) are laid out in terms of those groups - what masking and physical removal need;
* the groups that cannot be pruned, and why (so the user can change a rule instead of guessing):
  each :class:`Reason` has a kind that :func:`aac.pruning.report.kept_counts` counts.

Each tensor is tracked as a list of :class:`Segment` s - runs of channels that come from one source -
plus the axis that holds them, counted from the end (so a permutation moves it and broadcasting
aligns it). A segment also remembers whether its pruned channels are exactly zero there: removing
channels is only equivalent to masking them if every layer that reads them reads zeros. A sigmoid,
an added constant or an unmasked batch norm breaks that, and the group is then kept, with the
reason. Code that reads a channel count (``x.size(1)``) or writes one (``x.reshape(n, 768, -1)``)
would not follow pruning either: the layers whose count it reads or writes are kept.

A channel shuffle - a reshape that splits the channel axis into axes, a permutation of them, and the
reshape that merges them back - moves channels, and so do ``chunk`` s that cut through them. The
tensor then carries a :class:`ChannelOrder`, the expression the model computes from its segments'
channels. The model recomputes its sizes from the tensor, so the stripped model moves its fewer
channels its own way: the layers that read them are cut in that order
(:meth:`ChannelLayout.kept_indices`), and the layers feeding the moves become one group whose filters
go at the same positions in each of a few equal parts, the fewest that keep every piece of every
``chunk`` holding the kept channels of the same piece of the full model (:meth:`_Analyzer._check_orders`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from aac.core.graph import (
    ActivationAttributes,
    AttentionAttributes,
    ConcatAttributes,
    ConstantAttributes,
    ConvAttributes,
    FlattenAttributes,
    Graph,
    IndexAttributes,
    ItemAttributes,
    LinearAttributes,
    Metatype,
    Node,
    NormAttributes,
    PermuteAttributes,
    ReshapeAttributes,
    ShapeAttributes,
    SplitAttributes,
)

SPATIAL, FLAT, ANY = "spatial", "flat", "any"


class Reason(str):
    """Why a group is kept whole: the text users read, plus a ``kind`` summaries count by.

    Kinds: ``first_layer``, ``downsample`` (the two NNCF rules), ``grouped``, ``op`` (an operation
    aac does not follow; ``op`` names it), ``output``, ``scopes``, ``code`` (a channel count read
    or written by the model's code), ``nonzero`` (pruned channels would be read as non-zero),
    ``norm``, ``attention``, ``mismatch`` (channels that do not line up), ``fixed`` (tied to a
    tensor that cannot be pruned).
    """

    kind: str
    op: str

    def __new__(cls, text: str, kind: str = "", op: str = "") -> Reason:
        reason = super().__new__(cls, text)
        reason.kind = kind
        reason.op = op
        return reason

    def __reduce__(self) -> tuple[type[Reason], tuple[str, str, str]]:
        return Reason, (str(self), self.kind, self.op)


@dataclass(frozen=True)
class PruningRules:
    """What the config allows; the callables answer for layer paths (scopes are resolved by the backend).

    ``grouped_convolutions`` and ``norm_statistics`` say what the backend can remove exactly: filters
    of grouped convolutions, and channels of layer norms over channels (whose statistics must then
    leave the pruned channels out while masked).
    """

    prune_first: bool = False
    prune_downsample: bool = False
    prune_batch_norms: bool = True
    is_ignored: Callable[[str], bool] = lambda layer: False
    is_target: Callable[[str], bool] = lambda layer: True
    grouped_convolutions: bool = False
    norm_statistics: bool = False


@dataclass(frozen=True)
class ChannelRun:
    """``channels`` consecutive channels of a layer's channel axis; ``group`` None means never pruned."""

    group: int | None
    channels: int


class ChannelOrder(ABC):
    """How a channel axis is made of the channels of its runs when it is not simply their concatenation.

    A channel shuffle (``view(b, g, c // g, h, w) -> transpose(1, 2) -> view(b, c, h, w)``) and the
    ``chunk`` s and concatenations around it move channels; the runs' channels, concatenated, are the
    *base*, and an order is the expression the model computes from it. :meth:`select` evaluates it
    for the channels that survive: the model recomputes its sizes from the tensor (``c // g``,
    ``chunk(2)``), so the stripped model holds its channels in an order of its own, and the layers
    that read them must be cut in that order (:meth:`ChannelLayout.kept_indices`).
    """

    @property
    @abstractmethod
    def extent(self) -> int:
        """Base channels the expression refers to (the highest index plus one)."""

    @abstractmethod
    def select(self, keep: np.ndarray) -> np.ndarray:
        """The base channels the axis holds, in its order, when only ``keep`` (one boolean per base channel) survive."""

    @abstractmethod
    def shifted(self, offset: int) -> ChannelOrder:
        """The same expression over a base that starts ``offset`` channels later."""

    @abstractmethod
    def problem(self, keep: np.ndarray) -> ChannelOrder | None:
        """The step that ``keep`` breaks (a piece that would hold other channels, a shape that would not divide), or None."""

    @cached_property
    def full(self) -> np.ndarray:
        """The base channels of the axis in the model as it is (nothing removed)."""
        return self.select(np.ones(self.extent, dtype=bool))

    @property
    def size(self) -> int:
        return len(self.full)

    #: the operation, for messages (steps that can break name one)
    where: str = ""


@dataclass(frozen=True)
class ChannelSpan(ChannelOrder):
    """Base channels ``start`` to ``stop``, in order."""

    start: int
    stop: int

    @property
    def extent(self) -> int:
        return self.stop

    def select(self, keep: np.ndarray) -> np.ndarray:
        return self.start + np.flatnonzero(keep[self.start : self.stop])

    def shifted(self, offset: int) -> ChannelOrder:
        return ChannelSpan(self.start + offset, self.stop + offset)

    def problem(self, keep: np.ndarray) -> ChannelOrder | None:
        return None


@dataclass(frozen=True)
class ChannelJoin(ChannelOrder):
    """A concatenation along the channel axis."""

    parts: tuple[ChannelOrder, ...]

    @property
    def extent(self) -> int:
        return max(p.extent for p in self.parts)

    def select(self, keep: np.ndarray) -> np.ndarray:
        return np.concatenate([p.select(keep) for p in self.parts])

    def shifted(self, offset: int) -> ChannelOrder:
        return ChannelJoin(tuple(p.shifted(offset) for p in self.parts))

    def problem(self, keep: np.ndarray) -> ChannelOrder | None:
        return next((found for p in self.parts if (found := p.problem(keep)) is not None), None)


class ChannelStep(ChannelOrder):
    """An operation on the channels of another order, its ``source`` (a chunk, a shuffle)."""

    source: ChannelOrder

    @property
    def extent(self) -> int:
        return self.source.extent

    def shifted(self, offset: int) -> ChannelOrder:
        return replace(self, source=self.source.shifted(offset))  # type: ignore[type-var]  # subclasses are dataclasses

    def problem(self, keep: np.ndarray) -> ChannelOrder | None:
        found = self.source.problem(keep)
        return found if found is not None else self._own_problem(keep)

    @abstractmethod
    def _own_problem(self, keep: np.ndarray) -> ChannelOrder | None:
        """This step's own :meth:`problem`, once its source has none."""


@dataclass(frozen=True)
class ChannelChunk(ChannelStep):
    """Piece ``index`` of ``pieces`` equal ones (``torch.chunk``: the first ones hold ``ceil(n / pieces)`` channels).

    Removing filters keeps the model exact only if each piece of the stripped tensor holds the kept
    channels of the same piece of the full one.
    """

    source: ChannelOrder
    index: int
    pieces: int
    where: str = ""

    def select(self, keep: np.ndarray) -> np.ndarray:
        channels = self.source.select(keep)
        step = -(-len(channels) // self.pieces)
        return channels[self.index * step : (self.index + 1) * step]

    def _own_problem(self, keep: np.ndarray) -> ChannelOrder | None:
        full = self.full
        return None if set(self.select(keep).tolist()) == set(full[keep[full]].tolist()) else self


@dataclass(frozen=True)
class ChannelShuffle(ChannelStep):
    """A reshape of the channel axis into ``factors``, a permutation of those axes, and the reshape that merges them.

    ``dims``: merged axis ``i`` is factor ``dims[i]``; factor ``computed`` is the one the code computes
    from the tensor's size (``c // g``), so it follows pruning while the others stay.
    """

    source: ChannelOrder
    factors: tuple[int, ...]
    computed: int
    dims: tuple[int, ...]
    where: str = ""

    def _sizes(self, channels: int) -> list[int] | None:
        fixed = math.prod(f for i, f in enumerate(self.factors) if i != self.computed)
        if channels % fixed:
            return None
        sizes = list(self.factors)
        sizes[self.computed] = channels // fixed
        return sizes

    def select(self, keep: np.ndarray) -> np.ndarray:
        channels = self.source.select(keep)
        sizes = self._sizes(len(channels))
        if sizes is None:
            raise ValueError(f"{len(channels)} channels cannot be reshaped into {self.factors} by {self.where}")
        moved: np.ndarray = channels.reshape(sizes).transpose(self.dims).ravel()
        return moved

    def _own_problem(self, keep: np.ndarray) -> ChannelOrder | None:
        return self if self._sizes(len(self.source.select(keep))) is None else None


@dataclass(frozen=True)
class ChannelLayout:
    """A layer's channel axis in terms of groups.

    ``repeat`` > 1 when a flatten turned each channel into ``repeat`` features; ``channel_major``
    says how (True: feature ``c * repeat + s``; False: feature ``s * channels + c``). ``order``: how
    the axis is made of the runs' channels when a channel shuffle moved them (None: in order).
    """

    runs: tuple[ChannelRun, ...]
    repeat: int = 1
    channel_major: bool = True
    order: ChannelOrder | None = None

    @property
    def channels(self) -> int:
        return self.order.size if self.order is not None else sum(r.channels for r in self.runs)

    @property
    def groups(self) -> set[int]:
        return {r.group for r in self.runs if r.group is not None}

    def _base(self, keep: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([keep[r.group] if r.group is not None else np.ones(r.channels, dtype=bool) for r in self.runs])

    def _repeated(self, channels: np.ndarray) -> np.ndarray:
        if self.repeat == 1:
            return channels
        return np.repeat(channels, self.repeat) if self.channel_major else np.tile(channels, self.repeat)

    def keep_vector(self, keep: Sequence[np.ndarray]) -> np.ndarray:
        """Which entries of this axis survive, given each group's boolean keep mask (flatten repeats applied)."""
        channels = self._base(keep)
        return self._repeated(channels if self.order is None else channels[self.order.full])

    def kept_indices(self, keep: Sequence[np.ndarray]) -> np.ndarray:
        """The entries of this axis that physical removal keeps, in the order the stripped model holds them.

        In order, unless a channel shuffle moved the channels: the stripped model then shuffles its
        fewer channels its own way, and these are the full axis' entries in that order.
        """
        if self.order is None:
            return np.flatnonzero(self.keep_vector(keep))
        base = self._base(keep)
        broken = self.order.problem(base)
        if broken is not None:
            raise ValueError(f"the kept channels do not stay consistent through {broken.where}")
        position = np.full(len(base), -1)
        position[self.order.full] = np.arange(self.order.size)
        indices: np.ndarray = position[self.order.select(base)]
        if self.repeat > 1:  # each channel's features, as the flatten laid them out
            features = (
                indices[:, None] * self.repeat + np.arange(self.repeat)
                if self.channel_major
                else np.arange(self.repeat)[:, None] * self.channels + indices
            )
            indices = features.ravel()
        return indices

    def referenced(self) -> list[int]:
        """How many channels of each run this axis holds (all of them, unless it holds a piece of a shuffle)."""
        if self.order is None:
            return [r.channels for r in self.runs]
        counts = np.bincount(self.order.full, minlength=sum(r.channels for r in self.runs))
        bounds = np.cumsum([0, *(r.channels for r in self.runs)])
        return [int(counts[a:b].sum()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def group_values(self, values: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(group, channels of the group, values at them)`` for each run of a group, from one value per channel of this axis."""
        values = np.asarray(values)
        positions = np.arange(len(values)) if self.order is None else self.order.full
        offset = 0
        for run in self.runs:
            inside = (positions >= offset) & (positions < offset + run.channels)
            if run.group is not None and inside.any():
                yield run.group, positions[inside] - offset, values[inside]
            offset += run.channels


@dataclass(frozen=True)
class LayerPlan:
    """How pruning changes one layer: its output channels, its input channels, or both.

    ``masked`` is False for a layer that only carries channels without parameters to mask while
    training (a norm without affine parameters, a batch norm with ``prune_batch_norms: false``);
    it is still cut when the model is stripped. A stored tensor that follows channels (metatype
    :attr:`~aac.core.graph.Metatype.CONSTANT`, ``layer`` its path) has them on ``axis``, counted
    from the end.
    """

    layer: str
    metatype: Metatype
    outputs: ChannelLayout | None = None
    inputs: ChannelLayout | None = None
    masked: bool = True
    axis: int | None = None


@dataclass(frozen=True)
class PruningGroup:
    """Producer layers whose filters form one channel space, pruned together.

    ``parts``: the channels form that many equal consecutive parts that must keep equally many
    channels (the groups of a grouped convolution). ``block``: channels go in whole consecutive
    blocks of that size (the heads of an attention layer).
    """

    id: int
    channels: int
    producers: tuple[str, ...]
    #: layers whose per-channel parameters follow (norms, depthwise convolutions, stored tensors)
    followers: tuple[str, ...] = ()
    parts: int = 1
    block: int = 1


@dataclass(frozen=True)
class KeptGroup:
    """Producers that stay whole, with every reason found."""

    producers: tuple[str, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class PruningAnalysis:
    groups: tuple[PruningGroup, ...]
    layers: Mapping[str, LayerPlan]
    kept: tuple[KeptGroup, ...]
    #: every convolution, linear and attention layer of the model, pruned or not (for coverage statistics)
    layer_types: Mapping[str, Metatype] = field(default_factory=dict)

    def group_of(self, producer: str) -> PruningGroup | None:
        return next((g for g in self.groups if producer in g.producers), None)


# ------------------------------------------------------------------------------------------
# propagation state
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    source: str
    channels: int | None
    #: where the pruned channels stopped being zero (None: they are exactly zero here)
    dirty: str | None = None


@dataclass(frozen=True)
class _Tensor:
    segments: tuple[Segment, ...]
    layout: str = ANY
    repeat: int | None = 1
    channel_major: bool = True
    #: the axis holding the channels, counted from the end; None when the backend does not say
    axis: int | None = None
    #: how the channels are made of the segments' channels when a shuffle moved them (None: in order)
    order: ChannelOrder | None = None

    @property
    def width(self) -> int | None:
        """Channels on the axis (flatten repeats aside), None when a segment's count is not known yet."""
        if self.order is not None:
            return self.order.size
        return None if any(s.channels is None for s in self.segments) else sum(s.channels or 0 for s in self.segments)

    def dirtied(self, where: str) -> _Tensor:
        return replace(self, segments=tuple(replace(s, dirty=s.dirty or where) for s in self.segments))

    def cleaned(self) -> _Tensor:
        return replace(self, segments=tuple(replace(s, dirty=None) for s in self.segments))

    def structure(self) -> tuple[tuple[int | None, ...], int | None, bool, ChannelOrder | None]:
        return tuple(s.channels for s in self.segments), self.repeat, self.channel_major, self.order


@dataclass(frozen=True)
class _Stored:
    """A parameter or buffer not yet combined with channels (a layer scale, a position embedding)."""

    node: str
    path: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class _Split:
    """A tensor whose channel axis a reshape split into several axes (``view(b, g, c // g, h, w)``), as permutes move them.

    Only a reshape that merges those axes back into the channel axis makes channels of it again (a
    channel shuffle when the permutes swapped them); anything else cannot follow its channels.
    """

    tensor: _Tensor
    #: the splitting reshape, for messages
    where: str
    #: the shape before the split; the channel axis is at ``position``, and so is the first factor after it
    shape: tuple[int, ...]
    position: int
    factors: tuple[int, ...]
    #: the factor the code computes from the channel count (``c // g``); the others are written numbers
    computed: int
    #: axis ``i`` now is axis ``perm[i]`` of the split shape
    perm: tuple[int, ...]


@dataclass(frozen=True)
class _Tuple:
    items: tuple[_Value, ...]


@dataclass(frozen=True)
class _Sizes:
    """Sizes read off tensors: for each read, the tensor and the axes read (None: all of them).
    ``exact`` when the value is one size as read, not computed from sizes."""

    reads: tuple[tuple[_Tensor, tuple[int, ...] | None], ...]
    exact: bool = False


_Value = _Tensor | _Stored | _Split | _Tuple | _Sizes | None


@dataclass
class _Source:
    key: str
    channels: int | None
    producer: bool
    from_input: bool
    reasons: list[Reason] = field(default_factory=list)
    parts: int = 1
    block: int = 1


@dataclass(frozen=True)
class _Use:
    """A layer reading (consumer, depthwise) or carrying (follower, stored tensor) channels."""

    layer: str
    metatype: Metatype
    tensor: _Tensor
    role: str  # "consumer" | "follower" | "depthwise" | "stored"
    declared: int  # the layer's own channel count on that axis
    masked: bool = True
    axis: int | None = None


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, key: str) -> None:
        self.parent.setdefault(key, key)

    def find(self, key: str) -> str:
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


# ------------------------------------------------------------------------------------------
# the analysis
# ------------------------------------------------------------------------------------------


def analyze(graph: Graph, rules: PruningRules) -> PruningAnalysis:
    """Find the pruning groups of ``graph`` under ``rules``."""
    return _Analyzer(graph, rules).run()


class _Analyzer:
    def __init__(self, graph: Graph, rules: PruningRules) -> None:
        self.graph = graph
        self.rules = rules
        self.sources: dict[str, _Source] = {}
        self.links = _UnionFind()
        self.uses: list[_Use] = []
        self.values: dict[str, _Value] = {}
        self.resolved: dict[int, _Tensor] = {}
        #: (node, reshaped tensor, tensor whose channel count the reshape reads): checked once ties are known
        self.size_checks: list[tuple[Node, _Tensor | None, _Tensor]] = []
        #: stored tensors also used where channels are not followed: they must keep their size
        self.pinned: set[str] = set()
        #: every shuffle or chunk that moves channels, with the segments of its base: checked once ties are known
        self.orders: list[tuple[ChannelOrder, tuple[Segment, ...]]] = []

    # -- sources and blocking ------------------------------------------------------------
    def _source(
        self,
        key: str,
        channels: int | None,
        *,
        producer: bool,
        from_input: bool,
        reasons: Iterable[Reason] = (),
        parts: int = 1,
        block: int = 1,
    ) -> _Source:
        source = self.sources.get(key)
        if source is None:
            source = self.sources[key] = _Source(key, channels, producer, from_input)
            self.links.add(key)
        source.reasons.extend(r for r in reasons if r not in source.reasons)
        source.parts = math.lcm(source.parts, parts)
        source.block = math.lcm(source.block, block)
        return source

    def _block(self, tensors: Iterable[_Tensor], reason: Reason) -> None:
        for tensor in tensors:
            for segment in tensor.segments:
                self._block_source(segment.source, reason)

    def _block_source(self, key: str, reason: Reason) -> None:
        reasons = self.sources[key].reasons
        if reason not in reasons:
            reasons.append(reason)

    def _fixed(self, node: Node, what: str, inputs: Sequence[_Tensor] = (), kind: str = "fixed", key: str | None = None) -> _Tensor:
        """A tensor whose channels aac cannot prune (a model input, a constant, an unknown op's output)."""
        from_input = bool(inputs) and all(self.sources[s.source].from_input for t in inputs for s in t.segments)
        reason = Reason(f"its channels are tied to {what}, which cannot be pruned", kind, node.op if kind == "op" else "")
        key = key or node.name
        self._source(key, None, producer=False, from_input=from_input or node.metatype is Metatype.INPUT, reasons=[reason])
        shape = node.output_shape
        layout = ANY if shape is None else FLAT if len(shape) == 2 else SPATIAL
        return _Tensor((Segment(key, None, dirty=node.describe()),), layout)

    def _unknown(self, node: Node, values: Sequence[_Value], why: str = "which aac cannot follow channels through") -> _Tensor:
        self.pinned.update(v.path for v in values if isinstance(v, _Stored))
        tensors = self._tensors(values)
        self._block(tensors, Reason(f"it feeds {node.describe()}, {why}", "op", node.op))
        return self._fixed(node, f"the output of {node.describe()}", tensors, kind="op")

    def _tensors(self, values: Iterable[_Value]) -> list[_Tensor]:
        """The tensors among ``values`` (inside tuples too); stored tensors are not channels yet."""
        found: list[_Tensor] = []
        for value in values:
            if isinstance(value, _Tensor):
                found.append(value)
            elif isinstance(value, _Split):
                found.append(value.tensor)
            elif isinstance(value, _Tuple):
                found.extend(self._tensors(value.items))
        return found

    def _as_tensor(self, node: Node, value: _Value) -> _Tensor | None:
        """``value`` as channels: a stored tensor or a tuple met where channels are expected cannot be pruned."""
        if isinstance(value, _Tensor) or value is None or isinstance(value, _Sizes):
            return value if isinstance(value, _Tensor) else None
        if isinstance(value, _Stored):
            self.pinned.add(value.path)
            stored = self.graph.node(value.node)
            return self._fixed(stored, f"a stored tensor ('{value.path}')")
        return self._fixed(node, f"a tuple read by {node.describe()}", self._tensors([value]), key=f"{node.name}:tuple")

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> PruningAnalysis:
        for node in self.graph:
            values = [self.values.get(name) for name in node.inputs]
            if node.metatype is not Metatype.SHAPE:
                self._read_sizes(node, values)
            self.values[node.name] = self._visit(node, values)
        self._check_sizes()
        self._check_orders()
        self._check_uses()
        return self._result()

    def _visit(self, node: Node, values: list[_Value]) -> _Value:
        m = node.metatype
        if m is Metatype.SHAPE:
            return self._sizes(node, values)
        if m is Metatype.INPUT:
            return self._fixed(node, "the model input")
        if m is Metatype.CONSTANT:
            attrs = node.attributes
            if isinstance(attrs, ConstantAttributes) and attrs.path is not None and node.output_shape is not None:
                return _Stored(node.name, attrs.path, node.output_shape)
            return self._fixed(node, f"a stored tensor ({node.describe()})")
        if m is Metatype.OUTPUT:
            self.pinned.update(v.path for v in values if isinstance(v, _Stored))
            self._block(self._tensors(values), Reason("its channels reach the model output", "output"))
            return None
        if m is Metatype.ITEM:
            return self._item(node, values)
        if any(isinstance(v, _Split) for v in values) and not self._keeps_split(node):
            return self._unknown(node, values, "and aac cannot follow channels split across several axes through it")
        data = [v for v in values if v is not None and not isinstance(v, _Sizes)]
        if not data:  # an operation that creates a tensor (torch.zeros …) is a fixed source
            return self._fixed(node, f"a tensor created by {node.describe()}")
        handler = _HANDLERS.get(m)
        if handler is None:
            return self._unknown(node, values)
        return handler(self, node, values)

    @staticmethod
    def _keeps_split(node: Node) -> bool:
        """Operations a split channel axis goes through: permutes, reshapes, and element-wise ones that keep zeros."""
        attrs = node.attributes
        zeros = node.metatype is Metatype.ACTIVATION and isinstance(attrs, ActivationAttributes) and attrs.preserves_zero
        return zeros or node.metatype in (Metatype.PERMUTE, Metatype.RESHAPE)

    def _data(self, node: Node, values: Sequence[_Value]) -> _Tensor:
        """The operand an operation of one input acts on, as channels."""
        value = next(v for v in values if v is not None and not isinstance(v, _Sizes))
        tensor = self._as_tensor(node, value)
        assert tensor is not None
        return tensor

    def _shape_of(self, name: str) -> tuple[int, ...] | None:
        return self.graph.node(name).output_shape

    # -- layers ----------------------------------------------------------------------------
    def _conv(self, node: Node, values: list[_Value]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, ConvAttributes) and node.layer is not None
        x = self._data(node, values)
        if x.axis is not None and attrs.channel_axis is not None:
            if x.axis != attrs.channel_axis:
                self._block([x], Reason(f"it feeds {node.describe()} along another axis than its channels", "mismatch"))
        elif x.layout == FLAT:
            self._block([x], Reason(f"it feeds {node.describe()} as a flat tensor", "mismatch"))
        out = _Tensor((Segment(node.layer, attrs.out_channels),), SPATIAL, axis=attrs.channel_axis)
        if attrs.is_depthwise:
            self._use(node, x, "depthwise", attrs.in_channels)
            return replace(x, layout=SPATIAL, axis=attrs.channel_axis).cleaned()
        self._use(node, x, "consumer", attrs.in_channels)
        reasons = self._producer_reasons(node, x)
        parts = 1
        if attrs.is_grouped:
            problem = self._grouped_problem(attrs, x)
            if problem is None:  # the filters go evenly per group, so must the channels it reads
                source = self.sources[x.segments[0].source]
                source.parts = math.lcm(source.parts, attrs.groups)
                parts = attrs.groups
            else:
                feeds = "" if problem.startswith(": its filters") else problem
                self._block([x], Reason(f"it feeds grouped convolution '{node.layer}' (groups={attrs.groups}){feeds}", "grouped"))
                reasons.append(Reason(f"grouped convolution (groups={attrs.groups}){problem}", "grouped"))
        if attrs.downsamples and not self.rules.prune_downsample:
            reasons.append(
                Reason(f"'{node.layer}' downsamples (stride {attrs.stride}); set prune_downsample_convs: true to prune it", "downsample")
            )
        self._source(node.layer, attrs.out_channels, producer=True, from_input=False, reasons=reasons, parts=parts)
        return out

    def _grouped_problem(self, attrs: ConvAttributes, x: _Tensor) -> str | None:
        """Why a grouped convolution's filters cannot be removed evenly per group (None: they can)."""
        if not self.rules.grouped_convolutions:
            return ": its filters cannot be removed one by one"
        if attrs.transposed:
            return ": a transposed grouped convolution"
        if len(x.segments) != 1 or x.repeat != 1 or x.order is not None:
            return ": it reads channels of several layers"
        return None

    def _linear(self, node: Node, values: list[_Value]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, LinearAttributes) and node.layer is not None
        x = self._data(node, values)
        if x.axis is not None and x.axis != -1:
            self._block([x], Reason(f"it feeds {node.describe()} along another axis than its channels", "mismatch"))
        elif x.axis is None and x.layout == SPATIAL:
            self._block([x], Reason(f"it feeds {node.describe()} along a spatial axis", "mismatch"))
        self._use(node, x, "consumer", attrs.in_features)
        reasons = self._producer_reasons(node, x)
        self._source(node.layer, attrs.out_features, producer=True, from_input=False, reasons=reasons)
        shape = node.output_shape
        return _Tensor((Segment(node.layer, attrs.out_features),), FLAT if shape is None or len(shape) == 2 else SPATIAL, axis=-1)

    def _attention(self, node: Node, values: list[_Value]) -> _Value:
        """Heads are removed whole; the inner width equals the input and output width, so those are one channel space."""
        attrs = node.attributes
        assert isinstance(attrs, AttentionAttributes) and node.layer is not None
        inputs = [self._as_tensor(node, v) for v in values[:3] if v is not None and not isinstance(v, _Sizes)]
        tensors = list({id(t): t for t in inputs if t is not None}.values())
        reasons = self._producer_reasons(node, tensors[0])
        if attrs.problem is not None:
            reasons.append(Reason(f"attention layer '{node.layer}': {attrs.problem}", "attention"))
        for x in tensors:
            if x.axis is not None and x.axis != -1:
                self._block([x], Reason(f"it feeds {node.describe()} along another axis than its channels", "mismatch"))
            self._use(node, x, "consumer", attrs.embed_dim)
        self._source(node.layer, attrs.embed_dim, producer=True, from_input=False, reasons=reasons, block=attrs.head_dim)
        for x in tensors:
            if len(x.segments) == 1 and x.repeat == 1 and x.order is None:
                self.links.union(node.layer, x.segments[0].source)
            else:
                self._block([x], Reason(f"attention layer '{node.layer}' reads channels of several layers", "attention"))
        shape = node.output_shape
        out = _Tensor((Segment(node.layer, attrs.embed_dim),), SPATIAL if shape is None or len(shape) > 2 else FLAT, axis=-1)
        successors = self.graph.successors(node.name)
        if not successors or any(s.metatype is not Metatype.ITEM for s in successors):
            return out
        weights = self._fixed(node, f"the attention weights of '{node.layer}'", key=f"{node.name}:weights")
        return _Tuple((out, weights))  # nn.MultiheadAttention's (output, weights)

    def _producer_reasons(self, node: Node, x: _Tensor) -> list[Reason]:
        layer = node.layer or node.name
        reasons = []
        if self.rules.is_ignored(layer):
            reasons.append(Reason(f"'{layer}' is in ignored_scopes", "scopes"))
        if not self.rules.is_target(layer):
            reasons.append(Reason(f"'{layer}' is not in target_scopes", "scopes"))
        if not self.rules.prune_first and all(self.sources[s.source].from_input for s in x.segments):
            reasons.append(
                Reason(f"'{layer}' is a first layer (it reads the model input); set prune_first_conv: true to prune it", "first_layer")
            )
        return reasons

    def _norm(self, node: Node, values: list[_Value]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, NormAttributes) and node.layer is not None
        x = self._data(node, values)
        if node.metatype is Metatype.LAYER_NORM:
            return self._layer_norm(node, attrs, x)
        per_channel = node.metatype in (Metatype.BATCH_NORM, Metatype.INSTANCE_NORM) or (
            node.metatype is Metatype.GROUP_NORM and attrs.num_groups == attrs.num_channels
        )
        if not per_channel:
            self._block([x], Reason(f"it feeds {node.describe()}, which normalises across channels", "norm"))
            return x.dirtied(node.describe())
        masked = attrs.affine and (node.metatype is not Metatype.BATCH_NORM or self.rules.prune_batch_norms)
        self._use(node, x, "follower", attrs.num_channels, masked=masked)
        if masked:
            return x.cleaned()
        if node.metatype is Metatype.BATCH_NORM:  # its running mean shifts zeroed channels
            reason = "prune_batch_norms is false" if attrs.affine else "it has no affine parameters to mask"
            return x.dirtied(f"{node.describe()} ({reason})")
        return x

    def _layer_norm(self, node: Node, attrs: NormAttributes, x: _Tensor) -> _Tensor:
        """A layer norm over the channels (the last axis) follows them when the backend leaves pruned channels out of
        its statistics; with its scale and offset masked, the pruned channels leave it as zeros."""
        if not self.rules.norm_statistics or x.axis != -1 or x.repeat != 1:
            self._block([x], Reason(f"it feeds {node.describe()}, which normalises across channels", "norm"))
            return x.dirtied(node.describe())
        if not attrs.affine:
            self._block([x], Reason(f"it feeds {node.describe()}, a layer norm without a scale and offset to mask", "norm"))
            return x.dirtied(node.describe())
        self._use(node, x, "follower", attrs.num_channels)
        return x.cleaned()

    # -- element-wise operations ---------------------------------------------------------
    def _activation(self, node: Node, values: list[_Value]) -> _Value:
        attrs = node.attributes
        keeps = isinstance(attrs, ActivationAttributes) and attrs.preserves_zero
        value = next(v for v in values if v is not None and not isinstance(v, _Sizes))
        if isinstance(value, _Stored) and keeps:
            return replace(value, shape=node.output_shape or value.shape)
        if isinstance(value, _Split):  # only zero-keeping ones get here (``contiguous`` in a channel shuffle)
            return value
        x = self._data(node, values)
        return x if keeps else x.dirtied(node.describe())

    def _pool(self, node: Node, values: list[_Value]) -> _Tensor:
        return self._data(node, values)

    def _spatial_reduce(self, node: Node, values: list[_Value]) -> _Tensor:
        return replace(self._data(node, values), layout=FLAT, repeat=1, axis=-1)

    def _flatten(self, node: Node, values: list[_Value]) -> _Tensor:
        """Flattening from axis 1: the channels become blocks of features (channels first) or interleave (channels last)."""
        attrs = node.attributes
        assert isinstance(attrs, FlattenAttributes)
        x = self._data(node, values)
        if x.layout == FLAT and x.axis in (None, -1):
            return x
        shape = self._shape_of(node.inputs[0])
        channel_major = attrs.channel_major
        if x.axis is not None and shape is not None:
            position = x.axis + len(shape)
            if position not in (1, len(shape) - 1):
                self._block([x], Reason(f"{node.describe()} merges its channels with axes on both sides", "mismatch"))
            channel_major = position == 1
        repeat = None
        if shape is not None:
            repeat = math.prod(shape[2:] if channel_major else shape[1:-1])
        if x.repeat != 1 and (repeat is None or x.channel_major != channel_major):
            self._block([x], Reason(f"{node.describe()} flattens channels that are already spread", "mismatch"))
        repeat = None if repeat is None or x.repeat is None else repeat * x.repeat
        return replace(x, layout=FLAT, repeat=repeat, channel_major=channel_major, axis=-1 if x.axis is not None else None)

    def _elementwise(self, node: Node, values: list[_Value]) -> _Tensor:
        """Operands line up channel by channel, so their sources are tied segment by segment.

        An operand of extent 1 on the channel axis (a per-sample factor, a scalar tensor) only
        broadcasts; a stored tensor of full extent follows the channels (a layer scale, a position
        embedding) and is cut with them.
        """
        operands = [(name, v) for name, v in zip(node.inputs, values, strict=True) if v is not None and not isinstance(v, _Sizes)]
        reference = next(
            (
                v
                for name, v in operands
                if isinstance(v, _Tensor)
                and v.axis is not None
                and self._shape_of(name)
                and all(s.channels is not None for s in v.segments)
            ),
            None,
        )
        channels: list[_Tensor] = []
        broadcast: list[int] = []
        for index, (name, value) in enumerate(operands):
            extent = self._extent(name, reference)
            if reference is not None and extent == 1 and self._extent(node.name, reference) != 1:
                broadcast.append(index)
            elif isinstance(value, _Stored) and reference is not None and extent == self._extent(node.name, reference):
                self.uses.append(_Use(value.path, Metatype.CONSTANT, reference, "stored", int(extent), axis=reference.axis))
                channels.append(reference.cleaned())
            else:
                tensor = self._as_tensor(node, value)
                assert tensor is not None
                channels.append(tensor)
        if not channels:
            return self._fixed(node, f"the output of {node.describe()}")
        first = channels[0]
        axes = {t.axis for t in channels}
        layouts = {t.layout for t in channels} - {ANY}
        aligned = len(axes) == 1 if None not in axes else len(layouts) <= 1
        if len({t.structure() for t in channels}) > 1 or not aligned or any(s.channels is None for s in first.segments):
            self._block(channels, Reason(f"it is combined in {node.describe()} with channels that do not line up", "mismatch"))
            return self._fixed(node, f"the output of {node.describe()}", channels)
        for other in channels[1:]:
            for a, b in zip(first.segments, other.segments, strict=True):
                self.links.union(a.source, b.source)
        op = node.op.lower()
        changes_zero = ("add" in op or "sub" in op or ("div" in op and 0 in broadcast)) and bool(broadcast)
        segments = []
        for index, segment in enumerate(first.segments):
            dirt = [t.segments[index].dirty for t in channels]
            if "mul" in op:
                dirty = None if None in dirt else dirt[0]
            elif "div" in op:
                dirty = dirt[0]
            else:
                dirty = next((d for d in dirt if d), None)
            segments.append(replace(segment, dirty=dirty or (node.describe() if changes_zero else None)))
        layout = next(iter(layouts), ANY)
        return replace(first, segments=tuple(segments), layout=layout)

    def _extent(self, name: str, reference: _Tensor | None) -> int | None:
        """Extent of node ``name``'s output on the reference tensor's channel axis (1 where broadcasting adds the axis)."""
        shape = self._shape_of(name)
        if reference is None or reference.axis is None or shape is None:
            return None
        return shape[reference.axis] if len(shape) >= -reference.axis else 1

    def _concat(self, node: Node, values: list[_Value]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, ConcatAttributes)
        tensors = [v for v in values if isinstance(v, _Tensor)]
        axis = next((t.axis for t in tensors if t.axis is not None), None)
        along = attrs.along_channels if attrs.axis is None or axis is None else attrs.axis == axis
        if not along:  # joined along another axis: channel c of every input is channel c
            return self._elementwise(replace(node, op="add"), values)
        inputs = [self._as_tensor(node, v) for v in values if v is not None and not isinstance(v, _Sizes)]
        if len({(t.layout, t.repeat, t.channel_major, t.axis) for t in inputs if t is not None}) > 1:
            self._block(
                [t for t in inputs if t is not None],
                Reason(f"it is concatenated in {node.describe()} with differently shaped tensors", "mismatch"),
            )
            return self._fixed(node, f"the output of {node.describe()}", [t for t in inputs if t is not None])
        tensors = [t for t in inputs if t is not None]
        order = None
        if any(t.order is not None for t in tensors):  # a shuffled tensor joined with others: the order covers them all
            if any(t.width is None for t in tensors):
                self._block(tensors, Reason(f"aac cannot tell how many channels each input of {node.describe()} has", "mismatch"))
                return self._fixed(node, f"the output of {node.describe()}", tensors)
            parts, offset = [], 0
            for t in tensors:
                total = sum(s.channels or 0 for s in t.segments)
                parts.append((t.order or ChannelSpan(0, total)).shifted(offset))
                offset += total
            order = ChannelJoin(tuple(parts))
        return replace(tensors[0], segments=tuple(s for t in tensors for s in t.segments), order=order)

    # -- shape operations ----------------------------------------------------------------
    def _permute(self, node: Node, values: list[_Value]) -> _Value:
        attrs = node.attributes
        assert isinstance(attrs, PermuteAttributes)
        value = next(v for v in values if v is not None and not isinstance(v, _Sizes))
        if isinstance(value, _Stored):
            return replace(value, shape=tuple(value.shape[d] for d in attrs.dims))
        if isinstance(value, _Split):
            if len(attrs.dims) != len(value.perm):
                return self._unknown(node, values, "and aac cannot tell which axes hold the channels")
            return replace(value, perm=tuple(value.perm[d] for d in attrs.dims))
        x = self._data(node, values)
        rank = len(attrs.dims)
        if x.axis is None or not -rank <= x.axis < 0:
            return self._unknown(node, values, "and aac cannot tell which axis holds the channels")
        return replace(x, axis=attrs.dims.index(x.axis + rank) - rank)

    def _reshape(self, node: Node, values: list[_Value]) -> _Value:
        """Follow the channel axis through a reshape that keeps it whole, alone or merged with its neighbours."""
        attrs = node.attributes
        assert isinstance(attrs, ReshapeAttributes)
        value = next(v for v in values if v is not None and not isinstance(v, _Sizes))
        if isinstance(value, _Stored) and node.output_shape is not None:
            return replace(value, shape=node.output_shape)
        if isinstance(value, _Split):
            return self._merge(node, values, value)
        x = self._data(node, values)
        before, after = self._shape_of(node.inputs[0]), node.output_shape
        if x.axis is None or before is None or after is None or not -len(before) <= x.axis < 0:
            return self._unknown(node, values, "and aac cannot tell which axis holds the channels")
        position = x.axis + len(before)
        prefix, channels = math.prod(before[:position]), before[position]
        target = next((q for q in range(len(after)) if math.prod(after[:q]) == prefix and after[q] % channels == 0), None)
        if target is None and self._channel_split(node, x) is not None:
            return self._split_axis(node, values, x)
        if target is None:
            return self._unknown(node, values, "which splits its channels across several axes")
        merged = after[target] // channels
        written = attrs.sizes[target] if attrs.sizes is not None and target < len(attrs.sizes) else None
        if written is not None and written != -1:
            self._block([x], Reason(f"its channel count {after[target]} is written in the code of {node.describe()}", "code"))
        layout = FLAT if len(after) == 2 else SPATIAL
        if merged == 1:
            return replace(x, axis=target - len(after), layout=layout)
        following = math.prod(before[position + 1 :])
        if merged == following and target == len(after) - 1 and x.repeat is not None and (x.repeat == 1 or x.channel_major):
            return replace(x, axis=-1, layout=layout, repeat=x.repeat * merged, channel_major=True)
        return self._unknown(node, values, "which merges its channels with other axes")

    # -- channel shuffles: a split channel axis, permuted and merged back ----------------------
    def _channel_split(self, node: Node, x: _Tensor) -> tuple[int, int] | None:
        """``(position, factors)`` when ``node`` reshapes the channel axis of ``x`` into consecutive axes and no other axis."""
        before, after = self._shape_of(node.inputs[0]), node.output_shape
        if x.axis is None or before is None or after is None or not -len(before) <= x.axis < 0:
            return None
        position, factors = x.axis + len(before), len(after) - len(before) + 1
        if factors < 2 or after[:position] != before[:position] or after[position + factors :] != before[position + 1 :]:
            return None
        return (position, factors) if math.prod(after[position : position + factors]) == before[position] else None

    def _split_axis(self, node: Node, values: list[_Value], x: _Tensor) -> _Value:
        """The first step of a channel shuffle: the factor the code computes from the channel count follows pruning."""
        attrs = node.attributes
        assert isinstance(attrs, ReshapeAttributes)
        split = self._channel_split(node, x)
        before, after = self._shape_of(node.inputs[0]), node.output_shape
        assert split is not None and before is not None and after is not None
        position, count = split
        if attrs.sizes is None or x.repeat != 1 or x.width is None:
            return self._unknown(node, values, "which splits its channels across several axes")
        written = attrs.sizes[position : position + count]
        computed = [i for i, w in enumerate(written) if w is None or w == -1]
        if len(computed) > 1:
            return self._unknown(node, values, "which splits its channels into several axes of sizes computed at run time")
        if not computed:
            self._block([x], Reason(f"its channel count {before[position]} is written in the code of {node.describe()}", "code"))
        factors = tuple(after[position : position + count])
        return _Split(x, node.describe(), before, position, factors, computed[0] if computed else 0, tuple(range(len(after))))

    def _merge(self, node: Node, values: list[_Value], split: _Split) -> _Value:
        """The last step of a channel shuffle: the split axes, side by side again, become the channel axis where it was."""
        attrs = node.attributes
        assert isinstance(attrs, ReshapeAttributes)
        count, position = len(split.factors), split.position
        slots = [split.perm.index(position + i) for i in range(count)]
        others = [a for a in split.perm if not position <= a < position + count]
        if sorted(slots) != list(range(position, position + count)) or others != sorted(others) or node.output_shape != split.shape:
            return self._unknown(node, values, f"which merges the channels {split.where} split with other axes")
        written = attrs.sizes[position] if attrs.sizes is not None and position < len(attrs.sizes) else None
        if written is not None and written != -1:
            self._block([split.tensor], Reason(f"its channel count {written} is written in the code of {node.describe()}", "code"))
        dims = tuple(split.perm[position + i] - position for i in range(count))
        x = split.tensor
        if dims == tuple(range(count)):  # split and merged back as it was
            return x
        width = sum(s.channels or 0 for s in x.segments)
        order = ChannelShuffle(x.order or ChannelSpan(0, width), split.factors, split.computed, dims, f"the channel shuffle {split.where}")
        return self._moved(x, order)

    def _moved(self, x: _Tensor, order: ChannelOrder) -> _Tensor:
        """``x`` with its channels moved by ``order``. Which ones a removal keeps must stay consistent through the moves,
        so every layer feeding them becomes one group (its filters evenly spread, see :meth:`_check_orders`)."""
        for segment in x.segments[1:]:
            self.links.union(x.segments[0].source, segment.source)
        self.orders.append((order, x.segments))
        return replace(x, order=order)

    def _check_orders(self) -> None:
        """Give each group whose channels a shuffle or chunk moves the fewest equal parts that keep every move exact.

        Its filters are then removed at the same positions in each part (:attr:`PruningGroup.parts`), so the
        kept channels of every piece and every reshape stay the ones the full model has there. That is
        checked by evaluating the moves for several such removals; a group no split into parts keeps exact
        is kept whole, naming the move.
        """
        by_root: dict[str, list[tuple[ChannelOrder, tuple[Segment, ...]]]] = {}
        for order, segments in self.orders:
            by_root.setdefault(self.links.find(segments[0].source), []).append((order, segments))
        members: dict[str, list[_Source]] = {}
        for source in self.sources.values():
            members.setdefault(self.links.find(source.key), []).append(source)
        for root, orders in by_root.items():
            sources = members[root]
            counts = {s.channels for s in sources}
            if len(counts) != 1 or not all(s.producer for s in sources):
                continue  # kept whole anyway (channels that differ, or tied to channels that cannot be pruned)
            channels = counts.pop() or 0
            base = math.lcm(*(s.parts for s in sources))
            candidates = [p for p in range(base, channels // 2 + 1, base) if channels % p == 0]
            broken: ChannelOrder | None = None
            for parts in candidates:
                broken = next((b for o, segments in orders if (b := _broken(o, segments, channels // parts)) is not None), None)
                if broken is None:
                    for source in sources:
                        source.parts = parts
                    break
            else:
                where = broken.where if broken is not None else orders[0][0].where
                reason = Reason(f"its channels go through {where}, which no even removal of its filters keeps consistent", "mismatch")
                for source in sources:
                    self._block_source(source.key, reason)

    def _broadcast(self, node: Node, values: list[_Value]) -> _Value:
        attrs = node.attributes
        assert isinstance(attrs, ReshapeAttributes)
        value = next(v for v in values if v is not None and not isinstance(v, _Sizes))
        if isinstance(value, _Stored):
            return replace(value, shape=node.output_shape or value.shape)
        x = self._data(node, values)
        if x.axis is not None and attrs.sizes is not None and len(attrs.sizes) >= -x.axis:
            written = attrs.sizes[x.axis]
            if written is not None and written != -1:
                self._block([x], Reason(f"its channel count {written} is written in the code of {node.describe()}", "code"))
        return x

    def _index(self, node: Node, values: list[_Value]) -> _Value:
        attrs = node.attributes
        assert isinstance(attrs, IndexAttributes)
        value = next(v for v in values if v is not None and not isinstance(v, _Sizes))
        if isinstance(value, _Stored) and node.output_shape is not None:
            return replace(value, shape=node.output_shape)
        x = self._data(node, values)
        rank = len(attrs.axes)
        if x.axis is None or not -rank <= x.axis < 0:
            return self._unknown(node, values, "and aac cannot tell which axis holds the channels")
        position = x.axis + rank
        target = attrs.axes[position]
        if target is None or attrs.narrowed[position]:
            return self._unknown(node, values, "which selects some of its channels")
        return replace(x, axis=target - attrs.output_rank, layout=FLAT if attrs.output_rank == 2 else x.layout)

    def _split(self, node: Node, values: list[_Value]) -> _Value:
        """Pieces along another axis keep every channel; along the channel axis they must fall between layers' channels."""
        attrs = node.attributes
        assert isinstance(attrs, SplitAttributes)
        x = self._data(node, values)
        if x.axis is None:
            return self._unknown(node, values, "and aac cannot tell which axis holds the channels")
        if attrs.axis != x.axis:
            axis = x.axis + 1 if not attrs.keeps_axis and attrs.axis > x.axis else x.axis
            return _Tuple(tuple(replace(x, axis=axis) for _ in attrs.sizes))
        pieces: list[_Tensor] = []
        segments = list(x.segments)
        for size in attrs.sizes:
            taken: list[Segment] = []
            while segments and sum(s.channels or 0 for s in taken) < size:
                taken.append(segments.pop(0))
            if (
                x.order is not None
                or x.repeat != 1
                or any(s.channels is None for s in taken)
                or sum(s.channels or 0 for s in taken) != size
            ):
                return self._chunk(node, values, x)
            pieces.append(replace(x, segments=tuple(taken)))
        return _Tuple(tuple(pieces))

    def _chunk(self, node: Node, values: list[_Value], x: _Tensor) -> _Value:
        """Equal pieces (``chunk``) across layers' channels or of shuffled ones: each piece holds part of the base channels.
        Sizes written in the code (``split(x, [16, 16])``) would not follow pruning."""
        attrs = node.attributes
        assert isinstance(attrs, SplitAttributes)
        if node.op != "chunk" or x.repeat != 1 or x.width is None or not attrs.keeps_axis:
            return self._unknown(node, values, "which splits the channels of one layer")
        width = sum(s.channels or 0 for s in x.segments)
        base = x.order or ChannelSpan(0, width)
        return _Tuple(tuple(self._moved(x, ChannelChunk(base, i, len(attrs.sizes), node.describe())) for i in range(len(attrs.sizes))))

    def _item(self, node: Node, values: list[_Value]) -> _Value:
        attrs = node.attributes
        source = values[0] if values else None
        if isinstance(source, _Tuple) and isinstance(attrs, ItemAttributes) and -len(source.items) <= attrs.index < len(source.items):
            return source.items[attrs.index]
        return self._unknown(node, values)

    # -- sizes read by the code -------------------------------------------------------------
    def _sizes(self, node: Node, values: list[_Value]) -> _Sizes | None:
        """Track which channel counts a size computed by the code depends on."""
        attrs = node.attributes
        axes = attrs.axes if isinstance(attrs, ShapeAttributes) else ()
        reads: list[tuple[_Tensor, tuple[int, ...] | None]] = []
        exact = False
        for value in values:
            if isinstance(value, _Tensor) and axes != ():
                reads.append((value, axes))
                exact = axes is not None and len(axes) == 1
            elif isinstance(value, _Split) and axes != ():  # sizes of the split axes: taken as reading the channel count
                reads.append((value.tensor, None))
            elif isinstance(value, _Sizes):
                if axes and all(a is None for _, a in value.reads):  # shape[k] of a whole shape read
                    reads.extend((tensor, axes) for tensor, _ in value.reads)
                    exact = len(axes) == 1 and len(value.reads) == 1
                else:
                    reads.extend(value.reads)
        return _Sizes(tuple(reads), exact) if reads else None

    def _read_sizes(self, node: Node, values: list[_Value]) -> None:
        """Note every channel count ``node`` uses; a reshape to the count it reads of its own input is fine (checked at the end)."""
        reshaped = next((v.tensor if isinstance(v, _Split) else v for v in values if isinstance(v, (_Tensor, _Split))), None)
        allowed = node.metatype in (Metatype.RESHAPE, Metatype.BROADCAST, Metatype.FLATTEN)
        # a channel shuffle's first reshape computes a factor from the channel count (``c // g``): fine, it follows pruning
        splits = node.metatype is Metatype.RESHAPE and reshaped is not None and self._channel_split(node, reshaped) is not None
        for value in values:
            if not isinstance(value, _Sizes):
                continue
            for tensor, axes in value.reads:
                if tensor.axis is None or (axes is not None and tensor.axis not in axes):
                    continue  # x.size(0), the batch; or a tensor without known channels (a model input)
                self.size_checks.append((node, reshaped if allowed and (value.exact or splits) else None, tensor))

    def _roots(self, tensor: _Tensor) -> list[tuple[str, int | None]]:
        return [(self.links.find(s.source), s.channels) for s in tensor.segments]

    def _check_sizes(self) -> None:
        for node, reshaped, tensor in self.size_checks:
            if reshaped is not None and self._roots(reshaped) == self._roots(tensor) and reshaped.repeat == tensor.repeat:
                continue
            reason = Reason(f"its channel count is read by the code of {node.describe()}", "code")
            self._block([tensor] if reshaped is None else [tensor, reshaped], reason)

    def _use(self, node: Node, tensor: _Tensor, role: str, declared: int, masked: bool = True) -> None:
        assert node.layer is not None
        if self.rules.is_ignored(node.layer):
            self._block([tensor], Reason(f"pruning it would change '{node.layer}', which is in ignored_scopes", "scopes"))
        self.uses.append(_Use(node.layer, node.metatype, tensor, role, declared, masked))

    # -- checks that need the whole graph ---------------------------------------------------
    def _check_uses(self) -> None:
        layouts: dict[str, set[tuple[tuple[tuple[str, int | None], ...], int | None, ChannelOrder | None]]] = {}
        for use in self.uses:
            if use.role == "stored" and use.layer in self.pinned:
                self._block(
                    [use.tensor], Reason(f"'{use.layer}' follows its channels but is also used where aac cannot follow them", "fixed")
                )
            tensor = self._resolve(use)
            if tensor is None:
                continue
            if use.role == "consumer":
                for segment in tensor.segments:
                    if segment.dirty:
                        self._block_source(
                            segment.source,
                            Reason(f"its pruned channels reach '{use.layer}' as non-zero values (through {segment.dirty})", "nonzero"),
                        )
            signature = (tuple((self.links.find(s.source), s.channels) for s in tensor.segments), tensor.repeat, tensor.order)
            layouts.setdefault(use.layer, set()).add(signature)
        for use in self.uses:
            if len(layouts.get(use.layer, ())) > 1:
                self._block([use.tensor], Reason(f"layer '{use.layer}' is called several times with differently pruned inputs", "mismatch"))

    def _resolve(self, use: _Use) -> _Tensor | None:
        """Fill in unknown channel counts and flatten factors from the layer's own size, or block."""
        tensor = use.tensor
        if tensor.order is not None:  # every count is known where channels were moved
            features = tensor.repeat if tensor.repeat is not None else use.declared // tensor.order.size
            if features * tensor.order.size != use.declared:
                self._block([tensor], Reason(f"aac cannot tell how the channels feeding '{use.layer}' map onto its inputs", "mismatch"))
                return None
            self.resolved[id(use)] = replace(tensor, repeat=features)
            return self.resolved[id(use)]
        known = sum(s.channels for s in tensor.segments if s.channels is not None)
        unknown = [i for i, s in enumerate(tensor.segments) if s.channels is None]
        repeat = tensor.repeat
        if repeat is None and not unknown and known and use.declared % known == 0:
            repeat = use.declared // known
        total = use.declared // repeat if repeat and use.declared % repeat == 0 else None
        if total is None or len(unknown) > 1 or (not unknown and known != total) or (unknown and total <= known):
            self._block([tensor], Reason(f"aac cannot tell how the channels feeding '{use.layer}' map onto its inputs", "mismatch"))
            return None
        segments = list(tensor.segments)
        if unknown:
            segments[unknown[0]] = replace(segments[unknown[0]], channels=total - known)
        resolved = replace(tensor, segments=tuple(segments), repeat=repeat)
        self.resolved[id(use)] = resolved
        return resolved

    # -- result ----------------------------------------------------------------------------
    def _result(self) -> PruningAnalysis:
        members: dict[str, list[_Source]] = {}
        for source in self.sources.values():
            members.setdefault(self.links.find(source.key), []).append(source)
        groups: list[PruningGroup] = []
        kept: list[KeptGroup] = []
        group_of: dict[str, int] = {}
        for root, sources in members.items():
            producers = tuple(s.key for s in sources if s.producer)
            reasons = [r for s in sources for r in s.reasons]
            counts = {s.channels for s in sources if s.producer}
            if len(counts) > 1:
                reasons.append(Reason(f"tied layers have different channel counts {sorted(counts)}", "mismatch"))
            parts = math.lcm(*(s.parts for s in sources))
            block = math.lcm(*(s.block for s in sources))
            channels = next(iter(counts), None) or 0
            if producers and not reasons and channels % (parts * block):
                reasons.append(
                    Reason(
                        f"its {channels} channels cannot form {parts} equal parts of whole blocks of {block} "
                        "(grouped convolutions and attention heads tied together)",
                        "grouped",
                    )
                )
            if not producers:
                continue
            if reasons or any(not s.producer for s in sources):
                kept.append(KeptGroup(producers, tuple(dict.fromkeys(reasons))))
                continue
            group_of[root] = len(groups)
            groups.append(PruningGroup(len(groups), channels, producers, parts=parts, block=block))
        return self._plans(groups, kept, group_of)

    def _plans(self, groups: list[PruningGroup], kept: list[KeptGroup], group_of: dict[str, int]) -> PruningAnalysis:
        def layout(tensor: _Tensor) -> ChannelLayout:
            runs = tuple(ChannelRun(group_of.get(self.links.find(s.source)), s.channels or 0) for s in tensor.segments)
            return ChannelLayout(runs, tensor.repeat or 1, tensor.channel_major, tensor.order)

        plans: dict[str, LayerPlan] = {}
        followers: dict[int, list[str]] = {}
        calls = self.graph.layers()
        for group in groups:
            for producer in group.producers:
                kind = calls[producer][0].metatype
                plans[producer] = LayerPlan(producer, kind, outputs=ChannelLayout((ChannelRun(group.id, group.channels),)))
        for use in self.uses:
            tensor = self.resolved.get(id(use))
            if tensor is None:
                continue
            channels = layout(tensor)
            if not channels.groups:
                continue
            current = plans.get(use.layer, LayerPlan(use.layer, use.metatype, axis=use.axis))
            if use.role == "consumer":
                plans[use.layer] = replace(current, inputs=channels)
            else:  # followers carry channels through: output and (for depthwise) input
                inputs = channels if use.role == "depthwise" else None
                plans[use.layer] = replace(current, outputs=channels, inputs=inputs, masked=use.masked)
                for group_id in channels.groups:
                    followers.setdefault(group_id, []).append(use.layer)
        groups = [replace(g, followers=tuple(dict.fromkeys(followers.get(g.id, ())))) for g in groups]
        weighted = (Metatype.CONV, Metatype.LINEAR, Metatype.ATTENTION)
        types = {layer: nodes[0].metatype for layer, nodes in calls.items() if nodes[0].metatype in weighted}
        return PruningAnalysis(tuple(groups), plans, tuple(kept), types)


def _broken(order: ChannelOrder, segments: Sequence[Segment], period: int) -> ChannelOrder | None:
    """The step of ``order`` that breaks when every segment keeps the same positions in each ``period`` channels, or None.

    Tried for several such removals (the first or last position gone, every other one, a single one kept).
    """
    patterns = [np.arange(period) < period - 1, np.arange(period) > 0, np.arange(period) % 2 == 0, np.arange(period) == 0]
    if period > 2:
        patterns.append(np.arange(period) == period - 1)
    for pattern in patterns:
        keep = np.concatenate([np.tile(pattern, (s.channels or 0) // period) for s in segments])
        broken = order.problem(keep)
        if broken is not None:
            return broken
    return None


_HANDLERS: dict[Metatype, Callable[[_Analyzer, Node, list[_Value]], _Value]] = {
    Metatype.CONV: _Analyzer._conv,
    Metatype.LINEAR: _Analyzer._linear,
    Metatype.ATTENTION: _Analyzer._attention,
    Metatype.BATCH_NORM: _Analyzer._norm,
    Metatype.INSTANCE_NORM: _Analyzer._norm,
    Metatype.GROUP_NORM: _Analyzer._norm,
    Metatype.LAYER_NORM: _Analyzer._norm,
    Metatype.ACTIVATION: _Analyzer._activation,
    Metatype.POOL: _Analyzer._pool,
    Metatype.SPATIAL_REDUCE: _Analyzer._spatial_reduce,
    Metatype.FLATTEN: _Analyzer._flatten,
    Metatype.ELEMENTWISE: _Analyzer._elementwise,
    Metatype.CONCAT: _Analyzer._concat,
    Metatype.PERMUTE: _Analyzer._permute,
    Metatype.RESHAPE: _Analyzer._reshape,
    Metatype.BROADCAST: _Analyzer._broadcast,
    Metatype.INDEX: _Analyzer._index,
    Metatype.SPLIT: _Analyzer._split,
}
