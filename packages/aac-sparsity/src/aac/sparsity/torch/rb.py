"""``rb_sparsity``: regularization-based sparsity with trainable masks.

Every sparsified weight gets a keep/drop logit (initialised to keep with probability 0.99). While
training, the mask is sampled - ``logit + logistic noise > 0`` - with a straight-through gradient
through the sigmoid; in evaluation (and once frozen) it is ``logit > 0``. The algorithm's loss,
``((kept fraction - (1 - level)) / 0.05)^2``, pulls the fraction of kept weights towards the
level; add ``controller.loss()`` to the task loss.

The formulas both frameworks share are in :mod:`aac.sparsity.rb`. ``compression_rate`` is that level -
the sparsity the loss pursues (the masks follow it during training; their measured sparsity is in the
statistics). Writing it unfreezes the masks, so the adaptive loop can move the level after
``sparsity_freeze_epoch``. The model counts as fully compressed once the schedule is at its target and
the masks are within ``params.eps`` of it.

Starting at keep probability 0.99, a logit's gradient is small (the sigmoid is flat there): NNCF
trains the masks with Adam, and ``compression_lr_multiplier`` (on the section or the config's root)
lets the masks learn faster than the weights with any optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from aac.core.api import CompressionLoss
from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import RBSparsityAlgorithm, SparsifiedLayer
from aac.sparsity.rb import NOISE_EPS, initial_logit, loss_term, lr_multiplier
from aac.sparsity.torch.base import TorchSparsityOps
from aac.torch.tracing import TorchModel
from aac.torch.transforms import WeightTransform, original


def binarize(logits: torch.Tensor) -> torch.Tensor:
    """``(logits > 0)`` as 0/1 whose gradient is that of ``sigmoid(logits)`` (straight-through)."""
    soft = torch.sigmoid(logits)
    return soft + ((logits > 0).to(soft.dtype) - soft).detach()


class RBMask(WeightTransform):
    """Multiplies a weight by a sampled (training) or thresholded (evaluation, frozen) trainable mask.

    The parameter ``logits`` holds the keep/drop logits divided by ``multiplier``
    (``compression_lr_multiplier``), so that any optimizer moves the logits ``multiplier`` times as
    fast as it would otherwise; :meth:`values` are the logits themselves.
    """

    #: the transform multiplies by a 0/1 mask element-wise (it commutes with element-wise quantization)
    is_binary_mask: ClassVar[bool] = True

    def __init__(self, shape: torch.Size, owner: str, device: torch.device | None = None, multiplier: float = 1.0) -> None:
        super().__init__(owner)
        self.multiplier = float(multiplier)
        self.logits = nn.Parameter(torch.full(shape, initial_logit(self.multiplier), device=device))
        self.frozen = False

    def values(self) -> torch.Tensor:
        """The keep/drop logits (the parameter times ``multiplier``)."""
        return self.logits if self.multiplier == 1.0 else self.logits * self.multiplier

    def select_channels(self, axis: int, index: torch.Tensor) -> None:
        """Follow structured pruning: keep the logits of the channels that are left."""
        kept = self.logits.detach().index_select(axis, index.to(self.logits.device)).clone()  # stored (divided) values
        self.logits = nn.Parameter(kept, requires_grad=self.logits.requires_grad)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        logits = self.values()
        if self.training and not self.frozen:
            noise = torch.rand_like(logits).clamp_(NOISE_EPS, 1.0 - NOISE_EPS)
            mask = binarize(logits + torch.log(noise) - torch.log1p(-noise))
        else:
            mask = (logits > 0).to(weight.dtype)
        return weight * mask


class RBSparsityLoss(CompressionLoss):
    """``((kept fraction - (1 - level)) / 0.05)^2``, over all layers (global) or averaged per layer (local)."""

    def __init__(self, algorithm: RBSparsityAlgorithm) -> None:
        self.algorithm = algorithm

    def forward(self) -> Any:
        algorithm = self.algorithm
        if algorithm.frozen:
            return 0.0
        layers = algorithm.layers
        if algorithm.settings.local:
            levels = algorithm.layer_levels
            terms = [loss_term(binarize(_logits(layer)).sum() / layer.numel, levels[layer.name]) for layer in layers]
            return torch.stack(terms).mean()
        kept = torch.stack([binarize(_logits(layer)).sum() for layer in layers]).sum()
        return loss_term(kept / sum(layer.numel for layer in layers), algorithm.compression_rate)

    @torch.no_grad()
    def statistics(self) -> dict[str, float]:
        layers = self.algorithm.layers
        total = sum(layer.numel for layer in layers)
        probability = sum(float(torch.sigmoid(_logits(layer)).sum()) for layer in layers) / total
        return {"target_sparsity_level": self.algorithm.compression_rate, "mean_keep_probability": probability}


def _logits(layer: SparsifiedLayer) -> torch.Tensor:
    transform: RBMask = layer.transform
    return transform.values()


class TorchRBOps(TorchSparsityOps):
    """:class:`aac.sparsity.algorithm.RBOps` for torch modules: an :class:`RBMask` per weight, :class:`RBSparsityLoss`."""

    def __init__(self, prepared: TorchModel, lr_multiplier: float = 1.0) -> None:
        super().__init__(prepared)
        self.lr_multiplier = float(lr_multiplier)

    def make_transform(self, module: nn.Module, owner: str) -> RBMask:
        weight = original(module, "weight")
        return RBMask(weight.shape, owner=owner, device=weight.device, multiplier=self.lr_multiplier)

    def keep_mask(self, layer: SparsifiedLayer) -> np.ndarray:
        return (_logits(layer) > 0).detach().cpu().numpy()

    def make_loss(self, algorithm: RBSparsityAlgorithm) -> RBSparsityLoss:
        return RBSparsityLoss(algorithm)

    def set_frozen(self, layers: Sequence[SparsifiedLayer], frozen: bool) -> None:
        for layer in layers:
            transform: RBMask = layer.transform
            transform.frozen = frozen
            transform.logits.requires_grad_(not frozen)

    def set_levels(self, layers: Sequence[SparsifiedLayer], levels: Mapping[str, float]) -> None:
        """Nothing to do: the loss reads the controller's levels at every call."""


class RBSparsity(RBSparsityAlgorithm):
    """RB sparsity for torch models (adaptive: the loop may set its ``compression_rate``)."""

    prepared: TorchModel

    def __init__(self, prepared: TorchModel, section: AlgorithmSection, lr_multiplier: float = 1.0) -> None:
        super().__init__(TorchRBOps(prepared, lr_multiplier), section)


def create(model: TorchModel, section: AlgorithmSection, config: Config) -> RBSparsity:
    """The factory aac-core calls for an ``rb_sparsity`` section (``compression_lr_multiplier`` from it or the root)."""
    return RBSparsity(model, section, lr_multiplier=lr_multiplier(section, config))
