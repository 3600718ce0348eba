"""FLOPs, parameters and filters of a model as functions of how many filters each group keeps.

Every layer's cost is ``a * inputs * outputs + b * outputs`` where ``inputs`` and ``outputs`` are
its channel counts; both are linear in the groups' kept counts (a run of channels either belongs
to a group or is fixed). So the whole model is evaluated with two small matrix products per query,
which lets the FLOPs-target search try dozens of allocations in microseconds.

Counting follows ``torch.utils.flop_counter`` (two FLOPs per multiply-add, biases and element-wise
operations excluded): convolutions (``2 * k * Cin / groups * Cout * H * W``), linear layers
(``2 * in * out`` per row), attention layers (their projections, plus ``4 * queries * attended``
per channel for the two products of the attention itself) and products of tensors computed at run
time (a fixed cost). Parameters: convolutions, linear, norm and attention layers, and the stored
tensors that follow channels (a layer scale, a position embedding). FLOPs are per sample and need
the output shapes from a sample pass (``input_info``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aac.core.graph import (
    AttentionAttributes,
    ConvAttributes,
    Graph,
    LinearAttributes,
    MatmulAttributes,
    Metatype,
    NormAttributes,
)
from aac.pruning.groups import ChannelLayout, LayerPlan, PruningAnalysis

_NORMS = (Metatype.BATCH_NORM, Metatype.INSTANCE_NORM, Metatype.GROUP_NORM, Metatype.LAYER_NORM)
#: layers whose output channels are filters
_FILTERS = (Metatype.CONV, Metatype.LINEAR, Metatype.ATTENTION)


@dataclass(frozen=True)
class LayerCost:
    """One layer's numbers for one allocation."""

    layer: str
    in_channels: int
    out_channels: int
    flops: float
    params: int
    has_filters: bool


@dataclass(frozen=True)
class _Terms:
    """A layer's declared sizes and its cost coefficients (see the module docstring)."""

    inputs: int
    outputs: int
    flops: float | None  # per input * output
    weight: float  # parameters per input * output
    bias: float  # parameters per output
    flops_per_output: float | None = 0.0
    #: one input per output (a depthwise filter, a norm entry, a stored tensor): ``inputs`` does not change
    per_channel: bool = False


class CostModel:
    """Costs of the weighted layers of ``graph`` under any allocation of kept filters."""

    def __init__(self, graph: Graph, analysis: PruningAnalysis) -> None:
        groups = len(analysis.groups)
        inputs = [n for n in graph.nodes if n.metatype is Metatype.INPUT and n.output_shape]
        batch = inputs[0].output_shape[0] if inputs and inputs[0].output_shape else None
        rows: list[tuple[str, Metatype, np.ndarray, np.ndarray, _Terms]] = []
        for layer, calls in graph.layers().items():
            node = calls[0]
            plan = analysis.layers.get(layer)
            terms = _terms(node.metatype, node.attributes, [c.output_shape for c in calls], batch)
            if terms is not None:
                rows.append((layer, node.metatype, *self._rows(plan, terms, groups), terms))
        for node in graph.of_type(Metatype.MATMUL):
            flops = node.attributes.flops if isinstance(node.attributes, MatmulAttributes) else None
            terms = _Terms(1, 1, flops, 0.0, 0.0)
            rows.append((node.name, node.metatype, *self._rows(None, terms, groups), terms))
        for plan in analysis.layers.values():
            if plan.metatype is Metatype.CONSTANT and plan.outputs is not None:
                terms = _stored_terms(graph, plan)
                rows.append((plan.layer, plan.metatype, *self._rows(plan, terms, groups), terms))
        self.layers: tuple[str, ...] = tuple(r[0] for r in rows)
        self.filter_layers = np.array([r[1] in _FILTERS for r in rows], dtype=bool)
        self._inputs = np.array([r[2] for r in rows]).reshape(len(rows), groups + 1)
        self._outputs = np.array([r[3] for r in rows]).reshape(len(rows), groups + 1)
        self.has_flops = all(r[4].flops is not None and r[4].flops_per_output is not None for r in rows)
        self._flops = np.array([r[4].flops or 0.0 for r in rows])
        self._flops_per_output = np.array([r[4].flops_per_output or 0.0 for r in rows])
        self._weight = np.array([r[4].weight for r in rows])
        self._bias = np.array([r[4].bias for r in rows])
        self._per_channel = [r[4].per_channel for r in rows]

    @staticmethod
    def _rows(plan: LayerPlan | None, terms: _Terms, groups: int) -> tuple[np.ndarray, np.ndarray]:
        in_row = _row(None if plan is None or terms.per_channel else plan.inputs, 1 if terms.per_channel else terms.inputs, groups)
        return in_row, _row(plan.outputs if plan else None, terms.outputs, groups)

    def _channels(self, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        extended = np.append(np.asarray(kept, dtype=np.float64), 1.0)
        return self._inputs @ extended, self._outputs @ extended

    def flops(self, kept: np.ndarray) -> float:
        inputs, outputs = self._channels(kept)
        return float(self._flops @ (inputs * outputs) + self._flops_per_output @ outputs)

    def params(self, kept: np.ndarray) -> int:
        inputs, outputs = self._channels(kept)
        return int(round(float(self._weight @ (inputs * outputs) + self._bias @ outputs)))

    def filters(self, kept: np.ndarray) -> int:
        return int(round(float(self._channels(kept)[1][self.filter_layers].sum())))

    def per_layer(self, kept: np.ndarray) -> list[LayerCost]:
        inputs, outputs = self._channels(kept)
        rows = zip(
            self.layers,
            inputs,
            outputs,
            self._flops,
            self._flops_per_output,
            self._weight,
            self._bias,
            self._per_channel,
            self.filter_layers,
            strict=True,
        )
        return [
            LayerCost(
                layer,
                int(round(o if per_channel else i)),
                int(round(o)),
                float(f * i * o + g * o),
                int(round(w * i * o + b * o)),
                bool(filters),
            )
            for layer, i, o, f, g, w, b, per_channel, filters in rows
        ]


def _row(layout: ChannelLayout | None, declared: int, groups: int) -> np.ndarray:
    """Coefficients of one channel count over the kept counts (last entry: the fixed part)."""
    row = np.zeros(groups + 1)
    if layout is None:
        row[-1] = declared
        return row
    for run, held in zip(layout.runs, layout.referenced(), strict=True):
        if run.group is None:
            row[-1] += held * layout.repeat
        elif run.channels:  # a piece of a shuffled group holds that share of its kept filters (its parts keep equally)
            row[run.group] += held / run.channels * layout.repeat
    return row


def _terms(metatype: Metatype, attrs: object, shapes: list[tuple[int, ...] | None], batch: int | None) -> _Terms | None:
    """The cost terms of a layer called once per entry of ``shapes`` (its output shapes)."""
    if isinstance(attrs, ConvAttributes):
        kernel = float(np.prod(attrs.kernel_size))
        per_pair = kernel / (1 if attrs.is_depthwise else attrs.groups)
        positions = _positions(shapes, attrs.out_channels, batch)
        flops = None if positions is None else 2.0 * per_pair * positions
        return _Terms(attrs.in_channels, attrs.out_channels, flops, per_pair, float(attrs.has_bias), per_channel=attrs.is_depthwise)
    if isinstance(attrs, LinearAttributes):
        positions = _positions(shapes, attrs.out_features, batch)
        flops = None if positions is None else 2.0 * positions
        return _Terms(attrs.in_features, attrs.out_features, flops, 1.0, float(attrs.has_bias))
    if isinstance(attrs, AttentionAttributes):
        return _attention_terms(attrs, len(shapes))
    if metatype in _NORMS and isinstance(attrs, NormAttributes):
        return _Terms(1, attrs.num_channels, 0.0, 0.0, float(attrs.params_per_channel) if attrs.affine else 0.0, per_channel=True)
    return None


def _attention_terms(attrs: AttentionAttributes, calls: int) -> _Terms:
    """Inputs, inner width and outputs are one width ``E``: ``4 E^2`` weights (query, key, value, output),
    ``2 (2 Lq + 2 Lk) E^2`` FLOPs of projections and ``4 Lq S E`` of the attention products."""
    known = attrs.query_tokens is not None and attrs.key_tokens is not None and attrs.attended is not None
    projections = 2.0 * (2 * attrs.query_tokens + 2 * attrs.key_tokens) * calls if known else None  # type: ignore[operator]
    mixing = 4.0 * attrs.query_tokens * attrs.attended * calls if known else None  # type: ignore[operator]
    bias = 3.0 * attrs.qkv_bias + attrs.out_bias + attrs.params_per_head / attrs.head_dim
    return _Terms(attrs.embed_dim, attrs.embed_dim, projections, 4.0, bias, mixing)


def _stored_terms(graph: Graph, plan: LayerPlan) -> _Terms:
    """A stored tensor that follows channels (a layer scale): its entries per channel, nothing to compute."""
    assert plan.outputs is not None and plan.axis is not None
    node = next(n for n in graph.of_type(Metatype.CONSTANT) if getattr(n.attributes, "path", None) == plan.layer)
    shape = node.output_shape or ()
    channels = shape[plan.axis] if len(shape) >= -plan.axis else 1
    return _Terms(1, plan.outputs.channels, 0.0, 0.0, float(np.prod(shape)) / channels if channels else 0.0, per_channel=True)


def _positions(shapes: list[tuple[int, ...] | None], channels: int, batch: int | None) -> float | None:
    """Output positions per sample summed over calls (H*W for a convolution, rows for a linear layer)."""
    if any(shape is None for shape in shapes):
        return None
    return float(sum(np.prod(shape) / (batch or shape[0]) / channels for shape in shapes if shape))
