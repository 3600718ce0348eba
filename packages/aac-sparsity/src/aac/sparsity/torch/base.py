"""The torch part the three sparsity algorithms share: which modules, their transforms, counting zeros.

Every sparsified layer gets one weight transform (:mod:`aac.torch.transforms`) on its ``weight``:
the stored weight is never overwritten, so lowering the level brings old weights back, and
``strip()`` folds the masks in. Levels, schedule, ``compression_rate`` and statistics are the
framework-neutral controllers of :mod:`aac.sparsity.algorithm`; each torch algorithm is one of those
plus :class:`TorchSparsity` (``class MagnitudeSparsity(MagnitudeSparsityAlgorithm, TorchSparsity)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from aac.sparsity import algorithm
from aac.sparsity.algorithm import LEVEL_EPS, SparsityError
from aac.torch.algorithm import TorchCompressionAlgorithm
from aac.torch.transforms import WeightTransform, add_transform, original

__all__ = [
    "LEVEL_EPS",
    "SPARSIFIABLE",
    "LevelSparsityAlgorithm",
    "SparsifiedLayer",
    "SparsityAlgorithmBase",
    "SparsityError",
    "TorchSparsity",
]

#: layer types whose ``weight`` is sparsified (NNCF's list; norm layers are never sparsified)
SPARSIFIABLE: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
    nn.Embedding,
)


@dataclass
class SparsifiedLayer(algorithm.SparsifiedLayer):
    """One sparsified torch layer: its module path, the module and the transform on its weight."""

    @property
    def weight(self) -> torch.Tensor:
        """The stored (untransformed) weight."""
        return original(self.module, "weight")

    @property
    def numel(self) -> int:
        return self.weight.numel()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)


class TorchSparsity(TorchCompressionAlgorithm):
    """The hooks of :class:`aac.sparsity.algorithm.SparsityAlgorithm` for torch modules."""

    def _sparsifiable(self) -> Sequence[tuple[str, nn.Module]]:
        return [
            (path, m)
            for path, m in self.prepared.module.named_modules()
            if isinstance(m, SPARSIFIABLE) and isinstance(getattr(m, "weight", None), torch.Tensor)
        ]

    def _sparsifiable_kinds(self) -> str:
        return ", ".join(sorted({t.__name__ for t in SPARSIFIABLE}))

    def _sparsify(self, path: str, module: nn.Module) -> SparsifiedLayer:
        transform = self._make_transform(path, module)
        add_transform(module, "weight", transform)
        return SparsifiedLayer(path, module, transform)

    def _make_transform(self, path: str, module: nn.Module) -> WeightTransform:
        raise NotImplementedError

    def _keep_mask(self, layer: SparsifiedLayer) -> torch.Tensor:
        """The layer's current keep/zero pattern as a tensor of 0/1 (as used in evaluation)."""
        raise NotImplementedError

    @torch.no_grad()
    def _zeros(self) -> list[int]:
        layers: list[SparsifiedLayer] = self.layers  # type: ignore[attr-defined]
        return [int(layer.numel - torch.count_nonzero(self._keep_mask(layer)).item()) for layer in layers]

    def _model_parameter_count(self) -> int:
        own = {id(p) for m in self.model.modules() if isinstance(m, WeightTransform) for p in m.parameters(recurse=False)}
        return sum(p.numel() for p in self.model.parameters() if id(p) not in own)

    def _strip(self, model: nn.Module) -> nn.Module:
        """Fold the masks into the weights of ``model`` (a copy): zeros become real zeros."""
        for module in model.modules():
            if isinstance(module, WeightTransform) and module.owner == self.name:
                module.eval()  # deterministic masks (RB samples noise while training)
        return super()._strip(model)


class SparsityAlgorithmBase(algorithm.SparsityAlgorithm, TorchSparsity):
    """A torch sparsity algorithm without a level (``const_sparsity``'s base)."""


class LevelSparsityAlgorithm(algorithm.LevelSparsityAlgorithm, TorchSparsity):
    """A torch sparsity algorithm with a level (schedule, ``compression_rate``, freezing, local/global mode)."""
