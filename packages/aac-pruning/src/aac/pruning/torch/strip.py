"""Physical removal: cut pruned filters, and the input channels and norm entries that depended on them.

Runs on a copy of the model (see ``TorchCompressionAlgorithm.strip_model``). Each planned layer gets
smaller tensors and updated size attributes (``out_channels``, ``in_features``, ``num_features``,
``normalized_shape``, an attention layer's ``num_heads`` …); the pruning masks, all ones on what
remains, and the layer norms' statistics hooks are then dropped. Transforms of other algorithms on
the same tensors stay and are cut along (``aac.torch.transforms.cut_channels``), so the result
computes what the masked model computed, with fewer parameters and FLOPs, whatever order algorithms
strip in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aac.core.graph import Metatype
from aac.pruning.groups import ChannelLayout, LayerPlan, PruningAnalysis
from aac.pruning.masks import channel_indices
from aac.pruning.torch.masks import output_axis, stored_tensor
from aac.torch.attention import attention_spec
from aac.torch.transforms import cut_channels, original


def remove_pruned_channels(model: nn.Module, analysis: PruningAnalysis, keep: Sequence[np.ndarray]) -> None:
    """Shrink every layer of ``analysis`` in ``model`` to the channels ``keep`` retains."""
    for plan in analysis.layers.values():
        outputs = _indices(plan.outputs, keep)
        inputs = _indices(plan.inputs, keep)
        if plan.metatype is Metatype.CONSTANT:
            _cut_stored(model, plan, outputs)
            continue
        module = model.get_submodule(plan.layer)
        if plan.metatype is Metatype.ATTENTION:
            _cut_attention(module, plan, keep)
        elif plan.metatype is Metatype.CONV:
            _cut_conv(module, outputs, inputs)
        elif plan.metatype is Metatype.LINEAR:
            _cut(module, "weight", 0, outputs)
            _cut(module, "weight", 1, inputs)
            _cut(module, "bias", 0, outputs)
            _resize(
                module, out_features=len(outputs) if outputs is not None else None, in_features=len(inputs) if inputs is not None else None
            )
        else:  # per-channel norms: batch, instance, group norm with one channel per group, layer norm over channels
            for name in ("weight", "bias", "running_mean", "running_var"):
                _cut(module, name, 0, outputs)
            if outputs is not None:
                _resize_norm(module, len(outputs))


def _indices(layout: ChannelLayout | None, keep: Sequence[np.ndarray]) -> torch.Tensor | None:
    indices = channel_indices(layout, keep)
    return None if indices is None else torch.from_numpy(indices)


def _cut_conv(module: nn.Module, outputs: torch.Tensor | None, inputs: torch.Tensor | None) -> None:
    """Depthwise: a filter reads only its own channel, which goes with the filter. Grouped: the filters of
    group ``g`` read the kept inputs of group ``g``, as many in every group (the analysis guarantees it)."""
    groups = int(getattr(module, "groups", 1))
    transposed = bool(getattr(module, "transposed", False))
    out_axis = output_axis(module, "weight")
    weight = original(module, "weight")
    depthwise = groups > 1 and not transposed and weight.shape[1] == 1 and weight.shape[0] == groups
    _cut(module, "weight", out_axis, outputs)
    _cut(module, "bias", 0, outputs)
    if depthwise:
        if outputs is not None:
            _resize(module, out_channels=len(outputs), in_channels=len(outputs), groups=len(outputs))
        return
    if inputs is not None and groups > 1:
        _cut_grouped_inputs(module, groups, inputs)
    elif inputs is not None:
        _cut(module, "weight", 1 - out_axis, inputs)
    _resize(
        module,
        out_channels=original(module, "weight").shape[out_axis],
        in_channels=original(module, "weight").shape[1 - out_axis] * (groups if groups > 1 else 1),
    )


def _cut_grouped_inputs(module: nn.Module, groups: int, inputs: torch.Tensor) -> None:
    """Filters of group ``g`` read the kept inputs of group ``g``: the same positions in every group (levels keep
    them so), which makes the cut one selection of the weight's input axis."""
    size = int(original(module, "weight").shape[1])
    positions = inputs.view(groups, -1) - torch.arange(groups).unsqueeze(1) * size
    if not bool((positions == positions[0]).all()):
        raise AssertionError(f"grouped convolution {type(module).__name__}: its groups keep different input positions")
    _cut(module, "weight", 1, positions[0])


def _cut_stored(model: nn.Module, plan: LayerPlan, outputs: torch.Tensor | None) -> None:
    assert plan.axis is not None
    module, name = stored_tensor(model, plan.layer)
    if outputs is not None:
        cut_channels(module, name, plan.axis % original(module, name).dim(), outputs)


def _cut_attention(layer: nn.Module, plan: LayerPlan, keep: Sequence[np.ndarray]) -> None:
    """Whole heads go: rows of the packed projection and of the output projection, columns of both, per-head entries."""
    spec = attention_spec(layer)
    assert spec is not None and plan.outputs is not None
    kept = plan.outputs.keep_vector(keep)
    width, heads = len(kept), spec.heads(layer)
    channels = torch.from_numpy(np.flatnonzero(kept))
    packed = torch.cat([channels + part * width for part in range(3)])
    kept_heads = torch.from_numpy(np.flatnonzero(kept.reshape(heads, -1).all(axis=1)))
    for projection, rows in ((spec.qkv, packed), (spec.out, channels)):
        module, weight, bias = projection.tensors(layer)
        cut_channels(module, weight, 0, rows)
        cut_channels(module, weight, 1, channels)
        if bias is not None:
            cut_channels(module, bias, 0, rows)
        _resize(module, out_features=len(rows), in_features=len(channels))
    for path, axis in spec.head_tensors.items():
        owner, _, name = path.rpartition(".")
        cut_channels(layer.get_submodule(owner) if owner else layer, name, axis, kept_heads)
    setattr(layer, spec.num_heads, len(kept_heads))
    for attribute in spec.width_attributes:
        setattr(layer, attribute, len(channels))


def _cut(module: nn.Module, name: str, axis: int, index: torch.Tensor | None) -> None:
    if index is not None and isinstance(getattr(module, name, None), torch.Tensor):
        cut_channels(module, name, axis, index)


def _resize(module: nn.Module, **sizes: int | None) -> None:
    """Set the size attributes a module has (a functional layer's owner may have none)."""
    for attribute, value in sizes.items():
        if value is not None and hasattr(module, attribute):
            setattr(module, attribute, value)


def _resize_norm(module: nn.Module, channels: int) -> None:
    if isinstance(module, nn.GroupNorm):
        module.num_groups = module.num_channels = channels
    elif isinstance(module, nn.LayerNorm):
        module.normalized_shape = (channels,)
    else:
        module.num_features = channels
