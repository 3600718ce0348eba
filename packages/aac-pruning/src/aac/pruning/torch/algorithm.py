"""``filter_pruning`` for PyTorch: the neutral controller plus masks on modules and physical removal."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aac.core.config import AlgorithmSection, Config
from aac.core.graph import Graph, Metatype
from aac.pruning.algorithm import FilterPruningAlgorithm
from aac.pruning.groups import PruningAnalysis
from aac.pruning.torch.masks import TorchChannelMasks, output_axis
from aac.pruning.torch.norms import module_axes, remove_statistics_masks
from aac.pruning.torch.strip import remove_pruned_channels
from aac.torch.algorithm import TorchCompressionAlgorithm
from aac.torch.attention import attention_spec
from aac.torch.tracing import TorchModel
from aac.torch.transforms import original, remove_transforms


class TorchFilterPruning(FilterPruningAlgorithm, TorchCompressionAlgorithm):
    """Filter pruning of a ``torch.nn.Module``; ``strip()`` returns a physically smaller copy."""

    grouped_convolutions = True
    norm_statistics = True

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(prepared, section)
        graph, self._norm_axes = pruning_graph(prepared.graph)
        self._init_from_section(
            graph,
            section,
            is_ignored=lambda layer: layer in self.section_scopes.ignored,
            is_target=lambda layer: not self.section_scopes.targets or layer in self.section_scopes.targets,
            model_params=sum(p.numel() for p in prepared.module.parameters()),
        )

    def _attach_masks(self, analysis: PruningAnalysis) -> None:
        self._masks = TorchChannelMasks(self.model, analysis, self.name, self._norm_axes)

    def _layer_filters(self, layer: str) -> np.ndarray:
        """One row per output channel: a layer's weight, or an attention layer's output projection."""
        module = self.model.get_submodule(layer)
        spec = attention_spec(module)
        if spec is not None:
            module, name, _ = spec.out.tensors(module)
            weight = original(module, name).detach()
        else:
            weight = original(module, "weight").detach().movedim(output_axis(module, "weight"), 0)
        return weight.reshape(weight.shape[0], -1).to("cpu", torch.float32).numpy()  # NumPy has no bfloat16

    def _write_masks(self, keep: Sequence[np.ndarray]) -> None:
        self._masks.write(keep)

    def _read_masks(self) -> list[np.ndarray]:
        return self._masks.read()

    def _strip(self, model: nn.Module) -> nn.Module:
        remove_pruned_channels(model, self.analysis, self._removal_masks())
        remove_transforms(model, self.name)  # all ones on the channels that are left
        remove_statistics_masks(model)
        return model


def pruning_graph(graph: Graph) -> tuple[Graph, dict[str, tuple[int, int]]]:
    """The graph as filter pruning sees it on PyTorch, and where each layer norm module holds channels.

    A layer norm whose module does more than permute around the normalisation becomes opaque: its
    statistics could not be restricted to the kept channels (:mod:`aac.pruning.torch.norms`).
    """
    axes: dict[str, tuple[int, int]] = {}
    nodes = []
    for node in graph:
        if node.metatype is Metatype.LAYER_NORM and node.layer is not None:
            found = module_axes(graph, node.layer)
            if found is None:
                node = dataclasses.replace(node, metatype=Metatype.UNKNOWN, attributes=None)
            else:
                axes[node.layer] = found
        nodes.append(node)
    return Graph(nodes), axes


def create(prepared: TorchModel, section: AlgorithmSection, config: Config) -> TorchFilterPruning:
    """Factory registered for ``filter_pruning`` on the ``torch`` framework."""
    return TorchFilterPruning(prepared, section)
