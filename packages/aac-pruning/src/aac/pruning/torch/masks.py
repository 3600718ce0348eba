"""Channel masks on the user's modules, one :class:`~aac.torch.transforms.Mask` per masked tensor.

Masks are shaped to broadcast against their tensor (``[C, 1, 1, 1]`` for a convolution weight), so
the forward pass costs one multiplication per masked tensor and no reshaping. Writing new masks is
done once per level change, not per forward. Which tensors get masks and how groups map onto them
is :class:`aac.pruning.masks.ChannelMasks` (shared with TensorFlow); besides layers' weights and
biases, PyTorch masks stored tensors that follow channels (a layer scale, a position embedding) and
the packed query/key/value rows of attention layers, and layer norms over pruned channels leave the
pruned ones out of their statistics (:mod:`aac.pruning.torch.norms`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from aac.core.graph import Metatype
from aac.pruning.groups import ChannelLayout, LayerPlan, PruningAnalysis
from aac.pruning.masks import ChannelMasks
from aac.pruning.torch.norms import mask_statistics
from aac.torch.attention import attention_spec
from aac.torch.transforms import Mask, add_transform, original


def output_axis(module: nn.Module, tensor_name: str) -> int:
    """Axis of ``module.<tensor_name>`` that indexes output channels."""
    transposed = isinstance(module, nn.modules.conv._ConvNd) and module.transposed
    return 1 if transposed and tensor_name == "weight" else 0


def stored_tensor(model: nn.Module, path: str) -> tuple[nn.Module, str]:
    """The module that holds the parameter or buffer at ``path`` and its name there."""
    owner, _, name = path.rpartition(".")
    return model.get_submodule(owner), name


def add_channel_mask(module: nn.Module, tensor_name: str, axis: int, channels: int, owner: str) -> Mask:
    """An all-ones mask on ``module.<tensor_name>`` that broadcasts along everything but ``axis``."""
    tensor = original(module, tensor_name)
    shape = [1] * tensor.dim()
    shape[axis] = channels
    mask = Mask(torch.ones(shape, dtype=tensor.dtype, device=tensor.device), owner)
    add_transform(module, tensor_name, mask)
    return mask


class TorchChannelMasks(ChannelMasks[Mask]):
    """Masks on the weights and biases of the planned modules of ``model``.

    :param norm_axes: for each layer norm that follows a group, where its module's input and output hold channels.
    """

    def __init__(self, model: nn.Module, analysis: PruningAnalysis, owner: str, norm_axes: Mapping[str, tuple[int, int]]) -> None:
        self._model = model
        self._owner = owner
        self._norm_axes = norm_axes
        super().__init__(analysis)

    def _attach(self, plan: LayerPlan) -> list[Mask]:
        assert plan.outputs is not None
        module = self._model.get_submodule(plan.layer)
        masks = [
            add_channel_mask(module, name, output_axis(module, name), plan.outputs.channels, self._owner)
            for name in ("weight", "bias")
            if isinstance(getattr(module, name, None), torch.Tensor)
        ]
        if plan.metatype is Metatype.LAYER_NORM:
            mask_statistics(module, self._norm_axes[plan.layer], self._owner)
        return masks

    def _attach_layouts(self, plan: LayerPlan) -> list[tuple[Mask, ChannelLayout]]:
        assert plan.outputs is not None
        if plan.metatype is Metatype.CONSTANT:
            assert plan.axis is not None
            module, name = stored_tensor(self._model, plan.layer)
            axis = plan.axis % original(module, name).dim()
            return [(add_channel_mask(module, name, axis, plan.outputs.channels, self._owner), plan.outputs)]
        if plan.metatype is Metatype.ATTENTION:
            return self._attention(plan)
        return super()._attach_layouts(plan)

    def _attention(self, plan: LayerPlan) -> list[tuple[Mask, ChannelLayout]]:
        """Rows of the packed projection (queries, keys, values: each laid out like the output) and of the output projection."""
        assert plan.outputs is not None
        layer = self._model.get_submodule(plan.layer)
        spec = attention_spec(layer)
        assert spec is not None
        packed = ChannelLayout(plan.outputs.runs * 3)
        masks = []
        for projection, layout in ((spec.qkv, packed), (spec.out, plan.outputs)):
            module, weight, bias = projection.tensors(layer)
            for name in (weight, bias):
                if name is not None:
                    masks.append((add_channel_mask(module, name, 0, layout.channels, self._owner), layout))
        return masks

    def _assign(self, mask: Mask, values: np.ndarray) -> None:
        mask.update(torch.from_numpy(values).to(device=mask.mask.device, dtype=mask.mask.dtype))

    def _values(self, mask: Mask) -> np.ndarray:
        return mask.mask.detach().flatten().float().cpu().numpy()
