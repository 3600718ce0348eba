"""Where activation quantizers go, on the neutral graph (no framework).

The input of every quantized layer is fake-quantized. Layers that read the same tensor (a residual
sum feeding a block's first convolution and its downsample) share one quantizer, so each tensor has
one grid, as in a QDQ model. Both backends call :func:`input_sites` and only attach what it returns.

NNCF names an activation quantizer by the operation whose *output* it quantizes, after moving it up
through operations that do not change values (max pooling, flattening, concatenation).
:func:`sites_fed_by` finds, from such an operation, the sites aac placed for the same tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aac.core.graph import Graph, Metatype, Node


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


@dataclass(frozen=True)
class InputSite:
    """One activation quantizer: the layers (paths, graph order) whose first input it quantizes, and the
    graph nodes producing those inputs (one tensor, unless a layer is called on several)."""

    consumers: tuple[str, ...]
    tensors: tuple[str, ...]


def input_sites(graph: Graph, quantized: Callable[[Node], bool], quantize_inputs: bool = True) -> list[InputSite]:
    """The activation quantizers of a model's layers.

    :param quantized: whether a node - a call of a layer (``node.layer`` set) - gets its input quantized
        (type and scopes).
    :param quantize_inputs: False leaves out the quantizers of tensors that come straight from a model input.
    """
    groups = _UnionFind()
    inputs_of: dict[str, list[str]] = {}
    for node in graph.of_type(Metatype.CONV, Metatype.LINEAR):
        layer = node.layer
        if layer is None or not node.inputs or not quantized(node):
            continue
        producer = node.inputs[0]
        groups.union(f"layer:{layer}", f"tensor:{producer}")
        inputs_of.setdefault(layer, [])
        if producer not in inputs_of[layer]:
            inputs_of[layer].append(producer)
    components: dict[str, list[str]] = {}
    for layer in inputs_of:  # graph order
        components.setdefault(groups.find(f"layer:{layer}"), []).append(layer)
    sites = []
    for consumers in components.values():
        producers = list(dict.fromkeys(p for c in consumers for p in inputs_of[c]))
        if not quantize_inputs and any(graph.node(p).metatype is Metatype.INPUT for p in producers):
            continue
        sites.append(InputSite(tuple(consumers), tuple(producers)))
    return sites


#: operations (fx functions and methods, Keras and torch layer classes, lower case) that pass values through unchanged
_VALUE_PRESERVING = (
    "maxpool",
    "max_pool",
    "dropout",
    "identity",
    "flatten",
    "reshape",
    "view",
    "contiguous",
    "clone",
    "detach",
    "permute",
    "transpose",
    "zeropad",
    "zero_pad",
    "pad",
)


def passes_values(node: Node) -> bool:
    """True if an operation only moves or selects values (a quantizer on its input equals one on its output)."""
    if node.metatype in (Metatype.FLATTEN, Metatype.CONCAT):
        return True
    name = node.op.lower()
    return node.metatype not in (Metatype.CONV, Metatype.LINEAR, Metatype.OUTPUT) and any(n in name for n in _VALUE_PRESERVING)


def sites_fed_by(graph: Graph, node: str, tensors: Sequence[Sequence[str]]) -> list[int]:
    """Indexes of the sites (given by the tensors each quantizes) that quantize ``node``'s output, directly or
    after value-preserving operations."""
    by_tensor: dict[str, list[int]] = {}
    for index, site_tensors in enumerate(tensors):
        for tensor in site_tensors:
            by_tensor.setdefault(tensor, []).append(index)
    found: list[int] = []
    seen: set[str] = set()
    frontier = [node]
    while frontier:
        name = frontier.pop()
        if name in seen:
            continue
        seen.add(name)
        found += [i for i in by_tensor.get(name, []) if i not in found]
        frontier += [s.name for s in graph.successors(name) if passes_values(s)]
    return sorted(found)
