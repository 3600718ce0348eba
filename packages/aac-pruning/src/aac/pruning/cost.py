"""FLOPs, parameters and filters of a model as functions of how many filters each group keeps.

Every layer's cost is ``a * inputs * outputs + b * outputs`` where ``inputs`` and ``outputs`` are
its channel counts; both are linear in the groups' kept counts (a run of channels either belongs
to a group or is fixed). So the whole model is evaluated with two small matrix products per query,
which lets the FLOPs-target search try dozens of allocations in microseconds.

Counting follows NNCF: FLOPs of convolutions (``2 * k * Cin / groups * Cout * H * W``) and linear
layers (``2 * in * out`` per row), biases excluded; parameters of convolutions, linear and norm
layers. FLOPs need the output shapes from a sample pass (``input_info``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aac.core.graph import ConvAttributes, Graph, LinearAttributes, Metatype, NormAttributes
from aac.pruning.groups import ChannelLayout, PruningAnalysis

_NORMS = (Metatype.BATCH_NORM, Metatype.INSTANCE_NORM, Metatype.GROUP_NORM, Metatype.LAYER_NORM)


@dataclass(frozen=True)
class LayerCost:
    """One layer's numbers for one allocation."""

    layer: str
    in_channels: int
    out_channels: int
    flops: float
    params: int
    has_filters: bool


class CostModel:
    """Costs of the weighted layers of ``graph`` under any allocation of kept filters."""

    def __init__(self, graph: Graph, analysis: PruningAnalysis) -> None:
        groups = len(analysis.groups)
        rows: list[tuple[str, Metatype, np.ndarray, np.ndarray, float | None, float, float, bool]] = []
        for layer, calls in graph.layers().items():
            node = calls[0]
            plan = analysis.layers.get(layer)
            terms = _terms(node.metatype, node.attributes, [c.output_shape for c in calls])
            if terms is None:
                continue
            declared_in, declared_out, flops, weight, bias = terms
            in_row = _row(plan.inputs if plan else None, declared_in, groups)
            out_row = _row(plan.outputs if plan else None, declared_out, groups)
            # a depthwise filter (or a norm entry) sees one channel however many there are
            per_channel = node.metatype in _NORMS or (isinstance(node.attributes, ConvAttributes) and node.attributes.is_depthwise)
            if per_channel:
                in_row = _row(None, 1, groups)
            rows.append((layer, node.metatype, in_row, out_row, flops, weight, bias, per_channel))
        self.layers: tuple[str, ...] = tuple(r[0] for r in rows)
        self.filter_layers = np.array([r[1] in (Metatype.CONV, Metatype.LINEAR) for r in rows], dtype=bool)
        self._inputs = np.array([r[2] for r in rows]).reshape(len(rows), groups + 1)
        self._outputs = np.array([r[3] for r in rows]).reshape(len(rows), groups + 1)
        self.has_flops = all(r[4] is not None for r in rows)
        self._flops = np.array([r[4] or 0.0 for r in rows])
        self._weight = np.array([r[5] for r in rows])
        self._bias = np.array([r[6] for r in rows])
        self._per_channel = [r[7] for r in rows]

    def _channels(self, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        extended = np.append(np.asarray(kept, dtype=np.float64), 1.0)
        return self._inputs @ extended, self._outputs @ extended

    def flops(self, kept: np.ndarray) -> float:
        inputs, outputs = self._channels(kept)
        return float(self._flops @ (inputs * outputs))

    def params(self, kept: np.ndarray) -> int:
        inputs, outputs = self._channels(kept)
        return int(round(float(self._weight @ (inputs * outputs) + self._bias @ outputs)))

    def filters(self, kept: np.ndarray) -> int:
        return int(round(float(self._channels(kept)[1][self.filter_layers].sum())))

    def per_layer(self, kept: np.ndarray) -> list[LayerCost]:
        inputs, outputs = self._channels(kept)
        rows = zip(self.layers, inputs, outputs, self._flops, self._weight, self._bias, self._per_channel, self.filter_layers, strict=True)
        return [
            LayerCost(layer, int(round(o if per_channel else i)), int(round(o)), float(f * i * o), int(round(w * i * o + b * o)), bool(filters))
            for layer, i, o, f, w, b, per_channel, filters in rows
        ]


def _row(layout: ChannelLayout | None, declared: int, groups: int) -> np.ndarray:
    """Coefficients of one channel count over the kept counts (last entry: the fixed part)."""
    row = np.zeros(groups + 1)
    if layout is None:
        row[-1] = declared
        return row
    for run in layout.runs:
        if run.group is None:
            row[-1] += run.channels * layout.repeat
        else:
            row[run.group] += layout.repeat
    return row


def _terms(metatype: Metatype, attrs: object, shapes: list[tuple[int, ...] | None]) -> tuple[int, int, float | None, float, float] | None:
    """(inputs, outputs, FLOPs per input*output, parameters per input*output, parameters per output)."""
    if isinstance(attrs, ConvAttributes):
        kernel = float(np.prod(attrs.kernel_size))
        per_pair = kernel / (1 if attrs.is_depthwise else attrs.groups)
        positions = _positions(shapes, attrs.out_channels)
        flops = None if positions is None else 2.0 * per_pair * positions
        return attrs.in_channels, attrs.out_channels, flops, per_pair, float(attrs.has_bias)
    if isinstance(attrs, LinearAttributes):
        positions = _positions(shapes, attrs.out_features)
        flops = None if positions is None else 2.0 * positions
        return attrs.in_features, attrs.out_features, flops, 1.0, float(attrs.has_bias)
    if metatype in _NORMS and isinstance(attrs, NormAttributes):
        return 1, attrs.num_channels, 0.0, 0.0, 2.0 if attrs.affine else 0.0
    return None


def _positions(shapes: list[tuple[int, ...] | None], channels: int) -> float | None:
    """Output positions per sample summed over calls (H*W for a convolution, rows for a linear layer)."""
    if any(shape is None for shape in shapes):
        return None
    return float(sum(np.prod(shape) / shape[0] / channels for shape in shapes if shape))
