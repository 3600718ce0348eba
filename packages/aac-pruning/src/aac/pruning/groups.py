"""Which filters must be pruned together, found on the framework-neutral graph.

Removing filter ``c`` of a convolution removes channel ``c`` of its output tensor, so every layer
that sees that channel must agree: a residual addition ties the channels of all layers feeding it,
a depthwise convolution and a batch norm carry the channel through, a concatenation shifts it, a
flatten turns it into a block of features of the next fully connected layer. This module follows
channels through the graph once, in topological order, and answers:

* the **groups**: sets of producer layers (convolutions, linear layers) whose filters are one channel
  space and are pruned as a unit;
* for each touched layer, how its output channels (producers, followers such as norms and depthwise
  convolutions) and its input channels (consumers) are laid out in terms of those groups - what
  masking and physical removal need;
* the groups that cannot be pruned, and why (so the user can change a rule instead of guessing).

Each tensor is tracked as a list of :class:`Segment` s - runs of channels that come from one source.
A segment also remembers whether its pruned channels are exactly zero there: removing channels is
only equivalent to masking them if every layer that reads them reads zeros. A sigmoid, an added
constant or an unmasked batch norm breaks that, and the group is then kept, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from aac.core.graph import (
    ActivationAttributes,
    ConcatAttributes,
    ConvAttributes,
    FlattenAttributes,
    Graph,
    LinearAttributes,
    Metatype,
    Node,
    NormAttributes,
)

SPATIAL, FLAT, ANY = "spatial", "flat", "any"


@dataclass(frozen=True)
class PruningRules:
    """What the config allows; the callables answer for layer paths (scopes are resolved by the backend)."""

    prune_first: bool = False
    prune_downsample: bool = False
    prune_batch_norms: bool = True
    is_ignored: Callable[[str], bool] = lambda layer: False
    is_target: Callable[[str], bool] = lambda layer: True


@dataclass(frozen=True)
class ChannelRun:
    """``channels`` consecutive channels of a layer's channel axis; ``group`` None means never pruned."""

    group: int | None
    channels: int


@dataclass(frozen=True)
class ChannelLayout:
    """A layer's channel axis in terms of groups.

    ``repeat`` > 1 when a flatten turned each channel into ``repeat`` features; ``channel_major``
    says how (True: feature ``c * repeat + s``; False: feature ``s * channels + c``).
    """

    runs: tuple[ChannelRun, ...]
    repeat: int = 1
    channel_major: bool = True

    @property
    def channels(self) -> int:
        return sum(r.channels for r in self.runs)

    @property
    def groups(self) -> set[int]:
        return {r.group for r in self.runs if r.group is not None}

    def keep_vector(self, keep: Sequence[np.ndarray]) -> np.ndarray:
        """Which entries of this axis survive, given each group's boolean keep mask (flatten repeats applied)."""
        channels = np.concatenate([keep[r.group] if r.group is not None else np.ones(r.channels, dtype=bool) for r in self.runs])
        if self.repeat == 1:
            return channels
        return np.repeat(channels, self.repeat) if self.channel_major else np.tile(channels, self.repeat)


@dataclass(frozen=True)
class LayerPlan:
    """How pruning changes one layer: its output channels, its input channels, or both.

    ``masked`` is False for a layer that only carries channels without parameters to mask while
    training (a norm without affine parameters, a batch norm with ``prune_batch_norms: false``);
    it is still cut when the model is stripped.
    """

    layer: str
    metatype: Metatype
    outputs: ChannelLayout | None = None
    inputs: ChannelLayout | None = None
    masked: bool = True


@dataclass(frozen=True)
class PruningGroup:
    """Producer layers whose filters form one channel space, pruned together."""

    id: int
    channels: int
    producers: tuple[str, ...]
    #: layers whose per-channel parameters follow (norms, depthwise convolutions)
    followers: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeptGroup:
    """Producers that stay whole, with every reason found."""

    producers: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class PruningAnalysis:
    groups: tuple[PruningGroup, ...]
    layers: Mapping[str, LayerPlan]
    kept: tuple[KeptGroup, ...]

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

    def dirtied(self, where: str) -> _Tensor:
        return replace(self, segments=tuple(replace(s, dirty=s.dirty or where) for s in self.segments))

    def cleaned(self) -> _Tensor:
        return replace(self, segments=tuple(replace(s, dirty=None) for s in self.segments))


@dataclass
class _Source:
    key: str
    channels: int | None
    producer: bool
    from_input: bool
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Use:
    """A layer reading (consumer, depthwise) or carrying (follower) channels."""

    layer: str
    metatype: Metatype
    tensor: _Tensor
    role: str  # "consumer" | "follower" | "depthwise"
    declared: int  # the layer's own channel count on that axis
    masked: bool = True


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
        self.values: dict[str, _Tensor | None] = {}
        self.resolved: dict[int, _Tensor] = {}

    # -- sources and blocking ------------------------------------------------------------
    def _source(self, key: str, channels: int | None, *, producer: bool, from_input: bool, reasons: Iterable[str] = ()) -> _Source:
        source = self.sources.get(key)
        if source is None:
            source = self.sources[key] = _Source(key, channels, producer, from_input)
            self.links.add(key)
        source.reasons.extend(r for r in reasons if r not in source.reasons)
        return source

    def _block(self, tensors: Iterable[_Tensor], reason: str) -> None:
        for tensor in tensors:
            for segment in tensor.segments:
                self._block_source(segment.source, reason)

    def _block_source(self, key: str, reason: str) -> None:
        reasons = self.sources[key].reasons
        if reason not in reasons:
            reasons.append(reason)

    def _fixed(self, node: Node, what: str, inputs: Sequence[_Tensor] = ()) -> _Tensor:
        """A tensor whose channels aac cannot prune (a model input, a constant, an unknown op's output)."""
        from_input = bool(inputs) and all(self.sources[s.source].from_input for t in inputs for s in t.segments)
        reason = f"its channels are tied to {what}, which cannot be pruned"
        self._source(node.name, None, producer=False, from_input=from_input or node.metatype is Metatype.INPUT, reasons=[reason])
        layout = ANY if node.output_shape is None else FLAT if len(node.output_shape) == 2 else SPATIAL
        return _Tensor((Segment(node.name, None, dirty=node.describe()),), layout)

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> PruningAnalysis:
        for node in self.graph:
            inputs = [v for v in (self.values.get(name) for name in node.inputs) if v is not None]
            self.values[node.name] = self._visit(node, inputs)
        self._check_uses()
        return self._result()

    def _visit(self, node: Node, inputs: list[_Tensor]) -> _Tensor | None:
        m = node.metatype
        if m is Metatype.SHAPE:
            return None
        if m is Metatype.INPUT:
            return self._fixed(node, "the model input")
        if m is Metatype.CONSTANT:
            return self._fixed(node, f"a stored tensor ({node.describe()})")
        if m is Metatype.OUTPUT:
            self._block(inputs, "its channels reach the model output")
            return None
        if not inputs:  # an operation that creates a tensor (torch.zeros …) is a fixed source
            return self._fixed(node, f"a tensor created by {node.describe()}")
        handler = _HANDLERS.get(m)
        if handler is None:
            self._block(inputs, f"it feeds {node.describe()}, which aac cannot follow channels through")
            return self._fixed(node, f"the output of {node.describe()}", inputs)
        return handler(self, node, inputs)

    def _conv(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, ConvAttributes) and node.layer is not None
        x = inputs[0]
        if x.layout == FLAT:
            self._block([x], f"it feeds {node.describe()} as a flat tensor")
        if attrs.is_depthwise:
            self._use(node, x, "depthwise", attrs.in_channels)
            return replace(x, layout=SPATIAL).cleaned()
        self._use(node, x, "consumer", attrs.in_channels)
        reasons = self._producer_reasons(node, x)
        if attrs.is_grouped:
            self._block([x], f"it feeds grouped convolution '{node.layer}' (groups={attrs.groups})")
            reasons.append(f"grouped convolution (groups={attrs.groups}): its filters cannot be removed one by one")
        if attrs.downsamples and not self.rules.prune_downsample:
            reasons.append(f"'{node.layer}' downsamples (stride {attrs.stride}); set prune_downsample_convs: true to prune it")
        self._source(node.layer, attrs.out_channels, producer=True, from_input=False, reasons=reasons)
        return _Tensor((Segment(node.layer, attrs.out_channels),), SPATIAL)

    def _linear(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, LinearAttributes) and node.layer is not None
        x = inputs[0]
        if x.layout == SPATIAL:
            self._block([x], f"it feeds {node.describe()} along a spatial axis")
        self._use(node, x, "consumer", attrs.in_features)
        reasons = self._producer_reasons(node, x)
        self._source(node.layer, attrs.out_features, producer=True, from_input=False, reasons=reasons)
        return _Tensor((Segment(node.layer, attrs.out_features),), FLAT)

    def _producer_reasons(self, node: Node, x: _Tensor) -> list[str]:
        layer = node.layer or node.name
        reasons = []
        if self.rules.is_ignored(layer):
            reasons.append(f"'{layer}' is in ignored_scopes")
        if not self.rules.is_target(layer):
            reasons.append(f"'{layer}' is not in target_scopes")
        if not self.rules.prune_first and all(self.sources[s.source].from_input for s in x.segments):
            reasons.append(f"'{layer}' is a first layer (it reads the model input); set prune_first_conv: true to prune it")
        return reasons

    def _norm(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, NormAttributes) and node.layer is not None
        x = inputs[0]
        per_channel = node.metatype in (Metatype.BATCH_NORM, Metatype.INSTANCE_NORM) or (
            node.metatype is Metatype.GROUP_NORM and attrs.num_groups == attrs.num_channels
        )
        if not per_channel:
            self._block([x], f"it feeds {node.describe()}, which normalises across channels")
            return x.dirtied(node.describe())
        masked = attrs.affine and (node.metatype is not Metatype.BATCH_NORM or self.rules.prune_batch_norms)
        self._use(node, x, "follower", attrs.num_channels, masked=masked)
        if masked:
            return x.cleaned()
        if node.metatype is Metatype.BATCH_NORM:  # its running mean shifts zeroed channels
            reason = "prune_batch_norms is false" if attrs.affine else "it has no affine parameters to mask"
            return x.dirtied(f"{node.describe()} ({reason})")
        return x

    def _activation(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        attrs = node.attributes
        keeps = isinstance(attrs, ActivationAttributes) and attrs.preserves_zero
        return inputs[0] if keeps else inputs[0].dirtied(node.describe())

    def _pool(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        return inputs[0]

    def _spatial_reduce(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        return replace(inputs[0], layout=FLAT, repeat=1)

    def _flatten(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, FlattenAttributes)
        x = inputs[0]
        if x.layout == FLAT:
            return x
        shape = self.graph.node(node.inputs[0]).output_shape
        repeat = None
        if shape is not None:
            repeat = 1
            for extent in shape[2:] if attrs.channel_major else shape[1:-1]:
                repeat *= extent
        return replace(x, layout=FLAT, repeat=repeat, channel_major=attrs.channel_major)

    def _elementwise(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        """Operands line up channel by channel, so their sources are tied segment by segment."""
        first = inputs[0]
        shapes = {(tuple(s.channels for s in t.segments), t.repeat, t.channel_major) for t in inputs}
        layouts = {t.layout for t in inputs} - {ANY}
        if len(shapes) > 1 or len(layouts) > 1 or any(s.channels is None for s in first.segments):
            self._block(inputs, f"it is combined in {node.describe()} with channels that do not line up")
            return self._fixed(node, f"the output of {node.describe()}", inputs)
        for other in inputs[1:]:
            for a, b in zip(first.segments, other.segments, strict=True):
                self.links.union(a.source, b.source)
        op = node.op.lower()
        segments = []
        for index, segment in enumerate(first.segments):
            dirt = [t.segments[index].dirty for t in inputs]
            if "mul" in op:
                dirty = None if None in dirt else dirt[0]
            elif "div" in op:
                dirty = dirt[0]
            else:
                dirty = next((d for d in dirt if d), None)
            segments.append(replace(segment, dirty=dirty))
        layout = next(iter(layouts), ANY)
        return replace(first, segments=tuple(segments), layout=layout)

    def _concat(self, node: Node, inputs: list[_Tensor]) -> _Tensor:
        attrs = node.attributes
        assert isinstance(attrs, ConcatAttributes)
        if not attrs.along_channels:  # joined along another axis: channel c of every input is channel c
            return self._elementwise(replace(node, op="add"), inputs)
        if len({(t.layout, t.repeat, t.channel_major) for t in inputs}) > 1:
            self._block(inputs, f"it is concatenated in {node.describe()} with differently shaped tensors")
            return self._fixed(node, f"the output of {node.describe()}", inputs)
        return replace(inputs[0], segments=tuple(s for t in inputs for s in t.segments))

    def _use(self, node: Node, tensor: _Tensor, role: str, declared: int, masked: bool = True) -> None:
        assert node.layer is not None
        if self.rules.is_ignored(node.layer):
            self._block([tensor], f"pruning it would change '{node.layer}', which is in ignored_scopes")
        self.uses.append(_Use(node.layer, node.metatype, tensor, role, declared, masked))

    # -- checks that need the whole graph ---------------------------------------------------
    def _check_uses(self) -> None:
        layouts: dict[str, set[tuple[tuple[tuple[str, int | None], ...], int | None]]] = {}
        for use in self.uses:
            tensor = self._resolve(use)
            if tensor is None:
                continue
            if use.role == "consumer":
                for segment in tensor.segments:
                    if segment.dirty:
                        self._block_source(segment.source, f"its pruned channels reach '{use.layer}' as non-zero values (through {segment.dirty})")
            signature = (tuple((self.links.find(s.source), s.channels) for s in tensor.segments), tensor.repeat)
            layouts.setdefault(use.layer, set()).add(signature)
        for use in self.uses:
            if len(layouts.get(use.layer, ())) > 1:
                self._block([use.tensor], f"layer '{use.layer}' is called several times with differently pruned inputs")

    def _resolve(self, use: _Use) -> _Tensor | None:
        """Fill in unknown channel counts and flatten factors from the layer's own size, or block."""
        tensor = use.tensor
        known = sum(s.channels for s in tensor.segments if s.channels is not None)
        unknown = [i for i, s in enumerate(tensor.segments) if s.channels is None]
        repeat = tensor.repeat
        if repeat is None and not unknown and known and use.declared % known == 0:
            repeat = use.declared // known
        total = use.declared // repeat if repeat and use.declared % repeat == 0 else None
        if total is None or len(unknown) > 1 or (not unknown and known != total) or (unknown and total <= known):
            self._block([tensor], f"aac cannot tell how the channels feeding '{use.layer}' map onto its inputs")
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
                reasons.append(f"tied layers have different channel counts {sorted(counts)}")
            if not producers:
                continue
            if reasons or any(not s.producer for s in sources):
                kept.append(KeptGroup(producers, tuple(dict.fromkeys(reasons))))
                continue
            group_of[root] = len(groups)
            groups.append(PruningGroup(len(groups), counts.pop() or 0, producers))
        return self._plans(groups, kept, group_of)

    def _plans(self, groups: list[PruningGroup], kept: list[KeptGroup], group_of: dict[str, int]) -> PruningAnalysis:
        def layout(tensor: _Tensor) -> ChannelLayout:
            runs = tuple(ChannelRun(group_of.get(self.links.find(s.source)), s.channels or 0) for s in tensor.segments)
            return ChannelLayout(runs, tensor.repeat or 1, tensor.channel_major)

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
            current = plans.get(use.layer, LayerPlan(use.layer, use.metatype))
            if use.role == "consumer":
                plans[use.layer] = replace(current, inputs=channels)
            else:  # followers carry channels through: output and (for depthwise) input
                inputs = channels if use.role == "depthwise" else None
                plans[use.layer] = replace(current, outputs=channels, inputs=inputs, masked=use.masked)
                for group_id in channels.groups:
                    followers.setdefault(group_id, []).append(use.layer)
        groups = [replace(g, followers=tuple(dict.fromkeys(followers.get(g.id, ())))) for g in groups]
        return PruningAnalysis(tuple(groups), plans, tuple(kept))


_HANDLERS: dict[Metatype, Callable[[_Analyzer, Node, list[_Tensor]], _Tensor]] = {
    Metatype.CONV: _Analyzer._conv,
    Metatype.LINEAR: _Analyzer._linear,
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
}
