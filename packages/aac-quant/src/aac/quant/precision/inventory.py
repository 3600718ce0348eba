"""The quantizers as mixed precision sees them, and the two measures of a bit-width assignment.

* **bit complexity** (HAWQ's ``compression_ratio``, as NNCF defines it): for each quantized layer, its
  multiply-accumulates times the larger of its weight's and its input's bit widths; the ratio is that
  sum for an all-8-bit model over the sum for the assignment (2.0: half the bit operations).
* **model size** (AutoQ's ``compression_ratio``): quantized weights at their bit widths, every other
  parameter at 32 bits, over the float32 size of all parameters (0.25: an all-8-bit model).

Activation quantizers follow the weights they feed (NNCF's "liberal" assignment): the lowest bit width
among those weights; one that feeds no quantized weight keeps its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aac.core.graph import ConvAttributes, Graph, LinearAttributes

FLOAT_BITS = 8 * 4
REFERENCE_BITS = 8


@dataclass(frozen=True)
class WeightEntry:
    """A weight quantizer: its key in the controller, label, size and the work of the layer that reads it.

    :ivar macs: multiply-accumulates per sample of the layer reading the weight (from the graph's shapes);
        0 when unknown (no ``input_info``, or a weight read by a functional call), then ``numel`` stands in.
    """

    key: str
    label: str
    numel: int
    macs: float = 0.0

    @property
    def work(self) -> float:
        return self.macs or float(self.numel)


@dataclass(frozen=True)
class ActivationEntry:
    """An activation quantizer, with the weight keys of the layers it feeds and its own bit width."""

    label: str
    feeds: tuple[str, ...]
    bits: int


@dataclass(frozen=True)
class Inventory:
    """All quantizers of a controller, plus the parameters no quantizer covers (for the model size)."""

    weights: tuple[WeightEntry, ...]
    activations: tuple[ActivationEntry, ...]
    float_params: int = 0

    def activation_bits(self, weight_bits: Mapping[str, int], mode: str = "liberal") -> list[int]:
        """Each activation quantizer's bits under ``weight_bits``: the lowest of the weights it feeds.

        In ``strict`` mode those weights have one bit width already (they were chosen together).
        """
        return [min((weight_bits[k] for k in a.feeds if k in weight_bits), default=a.bits) for a in self.activations]

    def input_bits(self, weight_bits: Mapping[str, int], activation_bits: Sequence[int]) -> dict[str, int]:
        """Bit width of the input of the layer reading each weight (its weight's, when the input is not quantized)."""
        bits = dict(weight_bits)
        for entry, b in zip(self.activations, activation_bits, strict=True):
            for key in entry.feeds:
                bits[key] = b
        return bits

    def bit_complexity_ratio(self, weight_bits: Mapping[str, int], activation_bits: Sequence[int]) -> float:
        """All-8-bit bit complexity over that of this assignment (NNCF's HAWQ ``compression_ratio``)."""
        inputs = self.input_bits(weight_bits, activation_bits)
        reference = sum(w.work for w in self.weights) * REFERENCE_BITS
        mixed = sum(w.work * max(weight_bits[w.key], inputs[w.key]) for w in self.weights)
        return reference / mixed if mixed else 1.0

    def model_size_ratio(self, weight_bits: Mapping[str, int]) -> float:
        """Size of the weights at these bit widths over their float32 size (NNCF's AutoQ ``compression_ratio``)."""
        total = sum(w.numel for w in self.weights) + self.float_params
        size = sum(w.numel * weight_bits[w.key] for w in self.weights) + self.float_params * FLOAT_BITS
        return size / (total * FLOAT_BITS) if total else 1.0

    def groups(self, mode: str) -> list[list[str]]:
        """Weight keys that must share a bit width: one per weight (``liberal``), or the weights fed by one
        activation quantizer, merged where they overlap (``strict``)."""
        if mode != "strict":
            return [[w.key] for w in self.weights]
        group_of = {w.key: i for i, w in enumerate(self.weights)}
        members: dict[int, list[str]] = {i: [w.key] for i, w in enumerate(self.weights)}
        for entry in self.activations:
            fed = sorted({group_of[k] for k in entry.feeds if k in group_of})
            for other in fed[1:]:
                for key in members.pop(other, []):
                    group_of[key] = fed[0]
                    members[fed[0]].append(key)
        return list(members.values())


def layer_macs(graph: Graph, layer: str) -> float:
    """Multiply-accumulates per sample of every call of ``layer`` (0 if the graph has no shapes for it)."""
    total = 0.0
    for node in graph.layers().get(layer, []):
        shape = node.output_shape
        attributes = node.attributes
        if not shape:
            return 0.0
        per_sample = 1
        for d in shape[1:]:
            per_sample *= int(d)
        if isinstance(attributes, ConvAttributes):
            kernel = 1
            for k in attributes.kernel_size:
                kernel *= int(k)
            total += per_sample * kernel * attributes.in_channels // max(attributes.groups, 1)  # transposed: an upper bound
        elif isinstance(attributes, LinearAttributes):
            total += per_sample * attributes.in_features
    return total
