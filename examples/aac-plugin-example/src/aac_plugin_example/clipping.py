"""The ``weight_clipping`` algorithm for PyTorch: clip the largest weights of every layer; the adaptive loop searches how many.

``compression_rate`` is the fraction of each clipped layer's weights that are clipped: the
``round(rate * n)`` largest magnitudes of a layer with ``n`` weights are clamped to the largest magnitude
below them, which narrows the range a later quantization has to cover.

The clipping is a weight transform (:mod:`aac.torch.transforms`): the stored weights are never
overwritten, and the threshold is computed from them at every forward pass. What the model computes is
therefore a function of its current weights and the rate alone, and the rate is part of the controller's
state. When the accuracy-aware loop restores a checkpoint (the weights, then ``controller.load_state``),
the restored model computes exactly what it computed when it was validated, and writing
``compression_rate`` clips the weights that training produced, never an old copy of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from aac.core import AacError, AlgorithmSection, AlgorithmStatistics, Config
from aac.core.api import checked_rate
from aac.torch import TorchCompressionAlgorithm, TorchModel, WeightTransform, add_transform, original

#: layer types whose ``weight`` is clipped
CLIPPABLE: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def clipped_count(numel: int, rate: float) -> int:
    """How many of ``numel`` weights ``rate`` clips; at least one weight stays unclipped to set the threshold."""
    return min(round(rate * numel), numel - 1)


class ClipLargest(WeightTransform):
    """The layer sees its weight with the largest magnitudes clamped; the threshold follows the stored weight."""

    def __init__(self, owner: str, rate: float) -> None:
        super().__init__(owner)
        self.rate = rate

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        clipped = clipped_count(weight.numel(), self.rate)
        if clipped == 0:
            return weight
        threshold = weight.detach().abs().flatten().kthvalue(weight.numel() - clipped).values
        return weight.clamp(-threshold, threshold)


class WeightClipping(TorchCompressionAlgorithm):
    """Adaptive-level algorithm: the loop may set ``compression_rate``, the fraction of clipped weights.

    The base class gives scopes (:meth:`is_selected`), ``strip()`` (it folds the transforms into plain
    weights, on a copy), ``export_model()`` to ``.onnx`` and ``.pt``, statistics and the checkpoint state
    (scheduler, loss and :meth:`_get_algorithm_state`).
    """

    name: ClassVar[str] = "weight_clipping"
    adaptive: ClassVar[bool] = True

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(prepared, section)
        self._rate = checked_rate(section.params.get("clipping_rate", 0.0), self.name, "params.clipping_rate")
        self.layers: dict[str, ClipLargest] = {}
        for path, module in prepared.module.named_modules():
            if isinstance(module, CLIPPABLE) and self.is_selected(path):
                self.layers[path] = ClipLargest(self.name, self._rate)
                add_transform(module, "weight", self.layers[path])
        if not self.layers:
            kinds = ", ".join(kind.__name__ for kind in CLIPPABLE)
            raise AacError(
                f"{self.name} ({section.path}) found no layer to clip: it clips the weights of {kinds}; "
                "check ignored_scopes / target_scopes"
            )

    @property
    def compression_rate(self) -> float:
        return self._rate

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        """Only the rate changes: the transforms clip whatever the weights are now (the level contract)."""
        self._rate = checked_rate(value, self.name)
        for transform in self.layers.values():
            transform.rate = self._rate

    def _collect_statistics(self) -> AlgorithmStatistics:
        sizes = [original(self.model.get_submodule(path), "weight").numel() for path in self.layers]
        clipped = sum(clipped_count(size, self._rate) for size in sizes)
        return AlgorithmStatistics(
            self.name, {"compression_rate": self._rate, "clipped_weights": float(clipped), "clipped_layers": float(len(self.layers))}
        )

    def _get_algorithm_state(self) -> dict[str, Any]:
        return {"clipping_rate": self._rate}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        """Safe after the loop has loaded a checkpoint's weights: the setter never writes weights."""
        self.compression_rate = state["clipping_rate"]


def build(model: TorchModel, section: AlgorithmSection, config: Config) -> WeightClipping:
    """The factory named in the plugin's ``AlgorithmSpec``: aac-torch passes the traced model and the validated section."""
    return WeightClipping(model, section)
