"""Channel masks on the user's modules, one :class:`~aac.torch.transforms.Mask` per masked tensor.

Masks are shaped to broadcast against their tensor (``[C, 1, 1, 1]`` for a convolution weight), so
the forward pass costs one multiplication per masked tensor and no reshaping. Writing new masks is
done once per level change, not per forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aac.core.graph import Metatype
from aac.pruning.groups import ChannelLayout, PruningAnalysis
from aac.torch.transforms import Mask, add_transform


def output_axis(module: nn.Module, tensor_name: str) -> int:
    """Axis of ``module.<tensor_name>`` that indexes output channels."""
    transposed = isinstance(module, nn.modules.conv._ConvNd) and module.transposed
    return 1 if transposed and tensor_name == "weight" else 0


class ChannelMasks:
    """The masks filter pruning put on a model, and how group masks map onto them."""

    def __init__(self, model: nn.Module, analysis: PruningAnalysis, owner: str) -> None:
        self._entries: list[tuple[ChannelLayout, Mask]] = []
        self._group_masks: dict[int, Mask] = {}
        for plan in analysis.layers.values():
            if plan.outputs is None or not plan.masked:
                continue
            module = model.get_submodule(plan.layer)
            for tensor_name in ("weight", "bias"):
                tensor = getattr(module, tensor_name, None)
                if not isinstance(tensor, torch.Tensor):
                    continue
                shape = [1] * tensor.dim()
                shape[output_axis(module, tensor_name)] = plan.outputs.channels
                mask = Mask(torch.ones(shape, dtype=tensor.dtype, device=tensor.device), owner)
                add_transform(module, tensor_name, mask)
                self._entries.append((plan.outputs, mask))
                if plan.metatype in (Metatype.CONV, Metatype.LINEAR) and len(plan.outputs.runs) == 1:
                    group = plan.outputs.runs[0].group
                    if group is not None:
                        self._group_masks.setdefault(group, mask)
        self._groups = len(analysis.groups)

    def write(self, keep: Sequence[np.ndarray]) -> None:
        for layout, mask in self._entries:
            values = torch.from_numpy(layout.keep_vector(keep).astype(np.float32))
            mask.update(values.to(device=mask.mask.device, dtype=mask.mask.dtype))

    def read(self) -> list[np.ndarray]:
        return [(self._group_masks[g].mask.detach().flatten() > 0.5).cpu().numpy() for g in range(self._groups)]
