"""The torch part the three sparsity algorithms share: which modules, their masks, counting parameters.

Every sparsified layer gets one weight transform (:mod:`aac.torch.transforms`) on its ``weight``:
the stored weight is never overwritten, so lowering the level brings old weights back, and
``strip()`` folds the masks in. Levels, schedule, ``compression_rate`` and statistics are the
framework-neutral controllers of :mod:`aac.sparsity.algorithm`; :class:`TorchSparsityOps` is what they
need of torch (``MagnitudeSparsity`` is ``MagnitudeSparsityAlgorithm`` given ``TorchSparsityOps``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aac.sparsity import algorithm
from aac.torch.algorithm import TorchFramework
from aac.torch.tracing import TorchModel
from aac.torch.transforms import Mask, WeightTransform, add_transform, original

__all__ = ["SPARSIFIABLE", "SparsifiedLayer", "TorchSparsityOps"]

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


class TorchSparsityOps:
    """:class:`aac.sparsity.algorithm.MagnitudeOps` for torch modules: a :class:`~aac.torch.transforms.Mask` per weight.

    :param keep_nonzero: start each mask as ``weight != 0`` (``const_sparsity``: a stripped sparse model
        keeps its zeros) instead of all ones.
    """

    def __init__(self, prepared: TorchModel, *, keep_nonzero: bool = False) -> None:
        self.framework = TorchFramework(prepared)
        self._model = prepared.module
        self._keep_nonzero = keep_nonzero

    # -- every sparsity algorithm ------------------------------------------------------------
    def sparsifiable(self) -> Sequence[tuple[str, nn.Module]]:
        return [
            (path, m)
            for path, m in self._model.named_modules()
            if isinstance(m, SPARSIFIABLE) and isinstance(getattr(m, "weight", None), torch.Tensor)
        ]

    def sparsifiable_kinds(self) -> str:
        return ", ".join(sorted({t.__name__ for t in SPARSIFIABLE}))

    def sparsify(self, path: str, layer: nn.Module, owner: str) -> SparsifiedLayer:
        transform = self.make_transform(layer, owner)
        add_transform(layer, "weight", transform)
        return SparsifiedLayer(path, layer, transform)

    def make_transform(self, module: nn.Module, owner: str) -> WeightTransform:
        """The transform a newly sparsified module's weight gets."""
        weight = original(module, "weight").detach()  # the stored weight, not what earlier transforms make of it
        return Mask((weight != 0).to(weight.dtype) if self._keep_nonzero else torch.ones_like(weight), owner=owner)

    def keep_mask(self, layer: algorithm.SparsifiedLayer) -> np.ndarray:
        return self._mask_of(layer).detach().cpu().numpy()

    def _mask_of(self, layer: algorithm.SparsifiedLayer) -> torch.Tensor:
        transform: Mask = layer.transform
        return transform.mask

    def parameter_count(self) -> int:
        own = {id(p) for m in self._model.modules() if isinstance(m, WeightTransform) for p in m.parameters(recurse=False)}
        return sum(p.numel() for p in self._model.parameters() if id(p) not in own)

    def strip(self, model: nn.Module, owner: str) -> nn.Module:
        for module in model.modules():
            if isinstance(module, WeightTransform) and module.owner == owner:
                module.eval()  # deterministic masks (RB samples noise while training)
        return self.framework.fold(model, owner)

    # -- magnitude sparsity --------------------------------------------------------------------
    def weight_array(self, layer: algorithm.SparsifiedLayer) -> np.ndarray:
        weight: torch.Tensor = original(layer.module, "weight")
        return weight.detach().float().cpu().numpy()

    @torch.no_grad()
    def write_keep_mask(self, layer: algorithm.SparsifiedLayer, keep: np.ndarray) -> None:
        target = self._mask_of(layer)
        transform: Mask = layer.transform
        transform.update(torch.from_numpy(keep).to(device=target.device, dtype=target.dtype))
