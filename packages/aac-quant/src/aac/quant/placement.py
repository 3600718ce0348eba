"""Where activation quantizers go, on the neutral graph (no framework).

The input of every quantized layer is fake-quantized. Layers that read the same tensor (a residual
sum feeding a block's first convolution and its downsample) share one quantizer, so each tensor has
one grid, as in a QDQ model. Both backends call :func:`input_sites` and only attach what it returns.
"""

from __future__ import annotations

from collections.abc import Callable

from aac.core.graph import Graph, Metatype


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


def input_sites(graph: Graph, quantized: Callable[[str], bool], quantize_inputs: bool = True) -> list[list[str]]:
    """The activation quantizers of a model: for each, the layers (paths, graph order) whose first input it quantizes.

    :param quantized: whether the layer at a path gets its input quantized (type and scopes).
    :param quantize_inputs: False leaves out the quantizers of tensors that come straight from a model input.
    """
    groups = _UnionFind()
    inputs_of: dict[str, set[str]] = {}
    for node in graph.of_type(Metatype.CONV, Metatype.LINEAR):
        layer = node.layer
        if layer is None or not node.inputs or not quantized(layer):
            continue
        producer = node.inputs[0]
        groups.union(f"layer:{layer}", f"tensor:{producer}")
        inputs_of.setdefault(layer, set()).add(producer)
    components: dict[str, list[str]] = {}
    for layer in inputs_of:  # graph order
        components.setdefault(groups.find(f"layer:{layer}"), []).append(layer)
    sites = []
    for consumers in components.values():
        producers = set().union(*(inputs_of[c] for c in consumers))
        if not quantize_inputs and any(graph.node(p).metatype is Metatype.INPUT for p in producers):
            continue
        sites.append(consumers)
    return sites
