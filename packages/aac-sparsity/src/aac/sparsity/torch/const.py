"""``const_sparsity``: keep a fixed sparsity pattern while fine-tuning.

Each sparsified layer's mask starts as ``weight != 0`` - so a model that was sparsified and stripped
keeps its zeros - and is never recomputed. The masks are the same buffers as magnitude sparsity's,
so the state_dict of a ``magnitude_sparsity`` run loads into a ``const_sparsity`` model and freezes
that run's pattern. There is no level to set (not adaptive).
"""

from __future__ import annotations

import torch
from torch import nn

from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import ConstSparsityAlgorithm
from aac.sparsity.torch.base import SparsifiedLayer, TorchSparsity
from aac.torch.tracing import TorchModel
from aac.torch.transforms import Mask, original


class ConstSparsity(ConstSparsityAlgorithm, TorchSparsity):
    """Constant sparsity for torch models."""

    def _make_transform(self, path: str, module: nn.Module) -> Mask:
        weight = original(module, "weight").detach()  # the stored weight, not what earlier transforms make of it
        return Mask((weight != 0).to(weight.dtype), owner=self.name)

    def _keep_mask(self, layer: SparsifiedLayer) -> torch.Tensor:
        mask: torch.Tensor = layer.transform.mask  # type: ignore[assignment]
        return mask


def create(model: TorchModel, section: AlgorithmSection, config: Config) -> ConstSparsity:
    """The factory aac-core calls for a ``const_sparsity`` section."""
    return ConstSparsity(model, section)
