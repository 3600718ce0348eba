"""``magnitude_sparsity`` for torch: the neutral controller (:class:`~aac.sparsity.algorithm.MagnitudeSparsityAlgorithm`)
with ``Mask`` transforms on the modules' weights.

The masks are recomputed from the current weights whenever the level is applied - at every epoch
(every optimizer step with ``update_per_optimizer_step``) until ``sparsity_freeze_epoch``, and at
every ``compression_rate`` write. Importance and selection are the framework-neutral rules of
:mod:`aac.sparsity.levels`, so ``compression_rate`` reads back what was set (to ``0.5 / n``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import MagnitudeSparsityAlgorithm
from aac.sparsity.torch.base import SparsifiedLayer, TorchSparsity
from aac.torch.tracing import TorchModel
from aac.torch.transforms import Mask, original


class MagnitudeSparsity(MagnitudeSparsityAlgorithm, TorchSparsity):
    """Magnitude sparsity for torch models (adaptive: the loop may set its ``compression_rate``)."""

    def _make_transform(self, path: str, module: nn.Module) -> Mask:
        return Mask(torch.ones_like(original(module, "weight").detach()), owner=self.name)

    def _keep_mask(self, layer: SparsifiedLayer) -> torch.Tensor:
        mask: torch.Tensor = layer.transform.mask  # type: ignore[assignment]
        return mask

    def _weight_array(self, layer: SparsifiedLayer) -> np.ndarray:  # type: ignore[override]
        return layer.weight.detach().float().cpu().numpy()

    @torch.no_grad()
    def _write_keep_mask(self, layer: SparsifiedLayer, keep: np.ndarray) -> None:  # type: ignore[override]
        target = self._keep_mask(layer)
        layer.transform.update(torch.from_numpy(keep).to(device=target.device, dtype=target.dtype))  # type: ignore[operator]


def create(model: TorchModel, section: AlgorithmSection, config: Config) -> MagnitudeSparsity:
    """The factory aac-core calls for a ``magnitude_sparsity`` section."""
    return MagnitudeSparsity(model, section)
