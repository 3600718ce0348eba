"""``filter_pruning`` for PyTorch: the neutral controller plus masks on modules and physical removal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aac.core.config import AlgorithmSection, Config
from aac.pruning.algorithm import FilterPruningAlgorithm
from aac.pruning.groups import PruningAnalysis
from aac.pruning.torch.masks import TorchChannelMasks, output_axis
from aac.pruning.torch.strip import remove_pruned_channels
from aac.torch.algorithm import TorchCompressionAlgorithm
from aac.torch.tracing import TorchModel
from aac.torch.transforms import original, remove_transforms


class TorchFilterPruning(FilterPruningAlgorithm, TorchCompressionAlgorithm):
    """Filter pruning of a ``torch.nn.Module``; ``strip()`` returns a physically smaller copy."""

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(prepared, section)
        self._init_from_section(
            prepared.graph, section,
            is_ignored=lambda layer: layer in self.section_scopes.ignored,
            is_target=lambda layer: not self.section_scopes.targets or layer in self.section_scopes.targets,
            model_params=sum(p.numel() for p in prepared.module.parameters()),
        )

    def _attach_masks(self, analysis: PruningAnalysis) -> None:
        self._masks = TorchChannelMasks(self.model, analysis, self.name)

    def _layer_filters(self, layer: str) -> np.ndarray:
        module = self.model.get_submodule(layer)
        weight = original(module, "weight").detach().movedim(output_axis(module, "weight"), 0)
        return weight.reshape(weight.shape[0], -1).to("cpu", torch.float32).numpy()  # NumPy has no bfloat16

    def _write_masks(self, keep: Sequence[np.ndarray]) -> None:
        self._masks.write(keep)

    def _read_masks(self) -> list[np.ndarray]:
        return self._masks.read()

    def _strip(self, model: nn.Module) -> nn.Module:
        remove_pruned_channels(model, self.analysis, self._removal_masks())
        remove_transforms(model, self.name)  # all ones on the channels that are left
        return model


def create(prepared: TorchModel, section: AlgorithmSection, config: Config) -> TorchFilterPruning:
    """Factory registered for ``filter_pruning`` on the ``torch`` framework."""
    return TorchFilterPruning(prepared, section)
