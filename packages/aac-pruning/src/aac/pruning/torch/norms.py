"""Layer norms over pruned channels: statistics of the kept channels only, while the pruned ones are masked.

A layer norm's mean and variance run over all its channels, so masking channels to zero is not the
same as removing them: the zeros pull the mean and the variance. For the masked model to compute what
the stripped one will, each layer norm that follows a pruning group gets a forward hook that
normalises the kept channels alone and outputs zeros for the pruned ones (its scale and offset are
masked too). The hook finds the keep mask on the norm's own weight transform, so it holds no state
of its own, survives ``copy.deepcopy`` and does nothing once the mask is all ones or removed; strip
drops it with the masks.

A norm module may permute its input around ``F.layer_norm`` (torchvision's ``LayerNorm2d`` takes
``NCHW``): :func:`module_axes` reads from the graph which axis of the module's input and output holds
the channels.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aac.core.graph import ActivationAttributes, Graph, Metatype, Node, PermuteAttributes
from aac.torch.transforms import Mask, transforms_of


def module_axes(graph: Graph, layer: str) -> tuple[int, int] | None:
    """The axes (counted from the end) that hold the channels where the layer norm module ``layer`` is entered and
    left, or None when its forward does more than permute around the normalisation."""
    node = graph.layers()[layer][0]
    if node.scope != layer:  # the module itself was called: channels are last, as nn.LayerNorm normalises
        return -1, -1
    entry = _walk(graph, node, lambda n: graph.predecessors(n.name), layer, backwards=True)
    exit_ = _walk(graph, node, lambda n: graph.successors(n.name), layer, backwards=False)
    return None if entry is None or exit_ is None else (entry, exit_)


def _walk(graph: Graph, node: Node, step: Any, layer: str, *, backwards: bool) -> int | None:
    axis = -1
    while True:
        neighbours = [n for n in step(node) if n.metatype not in (Metatype.SHAPE, Metatype.CONSTANT)]
        if len(neighbours) != 1 or neighbours[0].scope != layer:
            return axis if len(neighbours) <= 1 or not backwards else None
        node = neighbours[0]
        attrs = node.attributes
        if isinstance(attrs, PermuteAttributes):
            rank = len(attrs.dims)
            axis = (attrs.dims[axis + rank] if backwards else attrs.dims.index(axis + rank)) - rank
        elif not (isinstance(attrs, ActivationAttributes) and attrs.preserves_zero):
            return None


def mask_statistics(module: nn.Module, axes: tuple[int, int], owner: str) -> None:
    """Make ``module`` (a layer norm whose weight carries ``owner``'s mask) normalise only the kept channels."""
    module.register_forward_hook(functools.partial(_kept_channels, axes=axes, owner=owner))


def remove_statistics_masks(model: nn.Module) -> None:
    for module in model.modules():
        for key, hook in list(module._forward_hooks.items()):
            if isinstance(hook, functools.partial) and hook.func is _kept_channels:
                del module._forward_hooks[key]


def _kept_channels(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor, *, axes: tuple[int, int], owner: str) -> Any:
    mask = next((t.mask for t in transforms_of(module, "weight") if isinstance(t, Mask) and t.owner == owner), None)
    if mask is None or bool(mask.all()):
        return None
    keep = torch.nonzero(mask.flatten() > 0.5).flatten()
    x = args[0].movedim(axes[0], -1)
    normed = F.layer_norm(
        x.index_select(-1, keep),
        (len(keep),),
        module.weight.index_select(0, keep),
        module.bias.index_select(0, keep) if module.bias is not None else None,
        module.eps,
    )
    return x.new_zeros(x.shape).index_copy(-1, keep, normed).movedim(-1, axes[1])
