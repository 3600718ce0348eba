"""Channel masks on the user's modules, one :class:`~aac.torch.transforms.Mask` per masked tensor.

Masks are shaped to broadcast against their tensor (``[C, 1, 1, 1]`` for a convolution weight), so
the forward pass costs one multiplication per masked tensor and no reshaping. Writing new masks is
done once per level change, not per forward. Which tensors get masks and how groups map onto them
is :class:`aac.pruning.masks.ChannelMasks` (shared with TensorFlow).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aac.pruning.groups import LayerPlan, PruningAnalysis
from aac.pruning.masks import ChannelMasks
from aac.torch.transforms import Mask, add_transform


def output_axis(module: nn.Module, tensor_name: str) -> int:
    """Axis of ``module.<tensor_name>`` that indexes output channels."""
    transposed = isinstance(module, nn.modules.conv._ConvNd) and module.transposed
    return 1 if transposed and tensor_name == "weight" else 0


class TorchChannelMasks(ChannelMasks[Mask]):
    """Masks on the weights and biases of the planned modules of ``model``."""

    def __init__(self, model: nn.Module, analysis: PruningAnalysis, owner: str) -> None:
        self._model = model
        self._owner = owner
        super().__init__(analysis)

    def _attach(self, plan: LayerPlan) -> list[Mask]:
        assert plan.outputs is not None
        module = self._model.get_submodule(plan.layer)
        masks = []
        for tensor_name in ("weight", "bias"):
            tensor = getattr(module, tensor_name, None)
            if not isinstance(tensor, torch.Tensor):
                continue
            shape = [1] * tensor.dim()
            shape[output_axis(module, tensor_name)] = plan.outputs.channels
            mask = Mask(torch.ones(shape, dtype=tensor.dtype, device=tensor.device), self._owner)
            add_transform(module, tensor_name, mask)
            masks.append(mask)
        return masks

    def _assign(self, mask: Mask, values: np.ndarray) -> None:
        mask.update(torch.from_numpy(values).to(device=mask.mask.device, dtype=mask.mask.dtype))

    def _values(self, mask: Mask) -> np.ndarray:
        return mask.mask.detach().flatten().float().cpu().numpy()
