"""``magnitude_sparsity``: zero the least important weights, at a level the schedule (or the
adaptive loop) sets.

The masks are recomputed from the current weights whenever the level is applied - at every epoch
(every optimizer step with ``update_per_optimizer_step``) until ``sparsity_freeze_epoch``, and at
every ``compression_rate`` write. Importance and selection are the framework-neutral rules of
:mod:`aac.sparsity.levels`, so ``compression_rate`` reads back what was set (to ``0.5 / n``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from aac.core.config import AlgorithmSection, Config
from aac.core.statistics import AlgorithmStatistics
from aac.sparsity.levels import global_masks, importance, local_masks
from aac.sparsity.torch.base import LevelSparsityAlgorithm, SparsifiedLayer
from aac.torch.tracing import TorchModel
from aac.torch.transforms import Mask, original


class MagnitudeSparsity(LevelSparsityAlgorithm):
    """Magnitude sparsity for torch models (adaptive: the loop may set its ``compression_rate``)."""

    name: ClassVar[str] = "magnitude_sparsity"
    default_schedule: ClassVar[str] = "polynomial"

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        self._thresholds: list[float] = []
        super().__init__(prepared, section)

    def _make_transform(self, path: str, module: nn.Module) -> Mask:
        return Mask(torch.ones_like(original(module, "weight").detach()), owner=self.name)

    def _keep_mask(self, layer: SparsifiedLayer) -> torch.Tensor:
        mask: torch.Tensor = layer.transform.mask  # type: ignore[assignment]
        return mask

    @torch.no_grad()
    def _apply_levels(self) -> None:
        kind = self.settings.weight_importance
        scores = [importance(layer.weight.detach().float().cpu().numpy(), kind) for layer in self.layers]
        if self.settings.local:
            masks, self._thresholds = local_masks(scores, [self._layer_levels[layer.name] for layer in self.layers])
        else:
            masks, threshold = global_masks(scores, self._level)
            self._thresholds = [threshold] * len(self.layers)
        for layer, keep in zip(self.layers, masks, strict=True):
            target = self._keep_mask(layer)
            layer.transform.update(torch.from_numpy(keep).to(device=target.device, dtype=target.dtype))  # type: ignore[operator]

    def _after_load(self) -> None:
        self._thresholds = []  # thresholds are recomputed at the next level change

    def _layer_columns(self) -> tuple[str, ...]:
        return (*super()._layer_columns(), "threshold")

    def _layer_rows(self, zeros: list[int]) -> list[tuple[Any, ...]]:
        rows = super()._layer_rows(zeros)
        thresholds = self._thresholds or [float("nan")] * len(rows)
        return [(*row, _finite(t)) for row, t in zip(rows, thresholds, strict=True)]

    def _collect_statistics(self) -> AlgorithmStatistics:
        statistics = super()._collect_statistics()
        if self._thresholds and not self.settings.local:
            statistics.scalars["threshold"] = _finite(self._thresholds[0])
        return statistics


def _finite(value: float) -> float:
    """Thresholds are -inf when nothing is pruned; report 0 instead (tables and TensorBoard need numbers)."""
    return value if value == value and value not in (float("inf"), float("-inf")) else 0.0


def create(model: TorchModel, section: AlgorithmSection, config: Config) -> MagnitudeSparsity:
    """The factory aac-core calls for a ``magnitude_sparsity`` section."""
    return MagnitudeSparsity(model, section)
