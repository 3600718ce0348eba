"""``filter_pruning`` for PyTorch: masks on modules and physical removal (:class:`TorchPruningOps`)."""

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
from aac.torch.algorithm import TorchFramework
from aac.torch.attention import attention_spec
from aac.torch.tracing import TorchModel
from aac.torch.transforms import original, remove_transforms


class TorchPruningOps:
    """:class:`aac.pruning.algorithm.PruningOps` for a ``torch.nn.Module``.

    Masks are weight transforms (:mod:`aac.pruning.torch.masks`); grouped convolutions and layer-norm
    statistics are pruned exactly; strip cuts the pruned channels out of every module.
    """

    grouped_convolutions = True
    norm_statistics = True

    def __init__(self, prepared: TorchModel) -> None:
        self.framework = TorchFramework(prepared)
        self._model = prepared.module
        self.graph, self._norm_axes = pruning_graph(prepared.graph)
        self._masks: TorchChannelMasks | None = None

    def scope_path(self, layer: str) -> str:
        return layer

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self._model.parameters())

    def unremovable(self, analysis: PruningAnalysis) -> dict[int, str]:
        return {}  # every planned module can be rebuilt smaller

    def attach_masks(self, analysis: PruningAnalysis, owner: str) -> None:
        self._masks = TorchChannelMasks(self._model, analysis, owner, self._norm_axes)

    def layer_filters(self, layer: str) -> np.ndarray:
        """One row per output channel: a layer's weight, or an attention layer's output projection."""
        module = self._model.get_submodule(layer)
        spec = attention_spec(module)
        if spec is not None:
            module, name, _ = spec.out.tensors(module)
            weight = original(module, name).detach()
        else:
            weight = original(module, "weight").detach().movedim(output_axis(module, "weight"), 0)
        return weight.reshape(weight.shape[0], -1).to("cpu", torch.float32).numpy()  # NumPy has no bfloat16

    def write_masks(self, keep: Sequence[np.ndarray]) -> None:
        self._attached().write(keep)

    def read_masks(self) -> list[np.ndarray]:
        return self._attached().read()

    def _attached(self) -> TorchChannelMasks:
        if self._masks is None:
            raise RuntimeError("filter_pruning: the masks are read or written before attach_masks()")
        return self._masks

    def remove_channels(self, model: nn.Module, analysis: PruningAnalysis, keep: Sequence[np.ndarray], owner: str) -> nn.Module:
        remove_pruned_channels(model, analysis, keep)
        remove_transforms(model, owner)  # all ones on the channels that are left
        remove_statistics_masks(model)
        return model


class TorchFilterPruning(FilterPruningAlgorithm):
    """Filter pruning of a ``torch.nn.Module``; ``strip()`` returns a physically smaller copy."""

    prepared: TorchModel

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(TorchPruningOps(prepared), section)


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
