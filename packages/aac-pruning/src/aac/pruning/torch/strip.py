"""Physical removal: cut pruned filters, and the input channels and norm entries that depended on them.

Runs on a copy of the model (see ``TorchCompressionAlgorithm.strip_model``). Each planned layer gets
smaller tensors and updated size attributes (``out_channels``, ``in_features``, ``num_features`` …);
the pruning masks, all ones on what remains, are then dropped. Transforms of other algorithms on the
same tensors stay and are cut along (``aac.torch.transforms.cut_channels``), so the result computes
what the masked model computed, with fewer parameters and FLOPs, whatever order algorithms strip in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aac.pruning.groups import ChannelLayout, PruningAnalysis
from aac.pruning.masks import channel_indices
from aac.pruning.torch.masks import output_axis
from aac.torch.transforms import cut_channels


def remove_pruned_channels(model: nn.Module, analysis: PruningAnalysis, keep: Sequence[np.ndarray]) -> None:
    """Shrink every layer of ``analysis`` in ``model`` to the channels ``keep`` retains."""
    for plan in analysis.layers.values():
        module = model.get_submodule(plan.layer)
        outputs = _indices(plan.outputs, keep)
        inputs = _indices(plan.inputs, keep)
        if isinstance(module, nn.modules.conv._ConvNd):
            _cut_conv(module, outputs, inputs)
        elif isinstance(module, nn.Linear):
            _cut(module, "weight", 0, outputs)
            _cut(module, "weight", 1, inputs)
            _cut(module, "bias", 0, outputs)
            module.out_features, module.in_features = module.weight.shape
        else:  # per-channel norm layers (batch, instance, group norm with one channel per group)
            for name in ("weight", "bias", "running_mean", "running_var"):
                _cut(module, name, 0, outputs)
            if outputs is not None:
                _resize_norm(module, len(outputs))


def _indices(layout: ChannelLayout | None, keep: Sequence[np.ndarray]) -> torch.Tensor | None:
    indices = channel_indices(layout, keep)
    return None if indices is None else torch.from_numpy(indices)


def _cut_conv(module: nn.modules.conv._ConvNd, outputs: torch.Tensor | None, inputs: torch.Tensor | None) -> None:
    depthwise = module.groups > 1 and not module.transposed
    out_axis = output_axis(module, "weight")
    _cut(module, "weight", out_axis, outputs)
    if not depthwise:  # a depthwise filter reads only its own channel, which goes with the filter
        _cut(module, "weight", 1 - out_axis, inputs)
    _cut(module, "bias", 0, outputs)
    if outputs is not None:
        module.out_channels = len(outputs)
    if depthwise and outputs is not None:
        module.in_channels = module.groups = len(outputs)
    elif inputs is not None:
        module.in_channels = len(inputs)


def _cut(module: nn.Module, name: str, axis: int, index: torch.Tensor | None) -> None:
    if index is not None and isinstance(getattr(module, name, None), torch.Tensor):
        cut_channels(module, name, axis, index)


def _resize_norm(module: nn.Module, channels: int) -> None:
    if isinstance(module, nn.GroupNorm):
        module.num_groups = module.num_channels = channels
    else:
        module.num_features = channels
