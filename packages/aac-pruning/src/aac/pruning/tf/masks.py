"""Which weights of a Keras layer carry channels, and the channel masks on them.

Keras keeps the channel axes last (a ``Conv2D`` kernel is ``(kh, kw, in, out)``, a ``Dense`` kernel
``(in, out)``, a transposed convolution's ``(kh, kw, out, in)``), whatever the data format.
:func:`weight_axes` says, for every layer class filter pruning changes, which axis of which weight
follows the layer's output channels and which its input channels; masking (here), importance
(:meth:`TFFilterPruning._layer_filters`) and removal (:mod:`aac.pruning.tf.strip`) all read it,
through :func:`planned_part`: aac-tf's graph splits a separable convolution into its depthwise part
(the layer's path) and its pointwise part (``path + ".pointwise"``), each planned on its own weights.
Masks are :class:`aac.tf.transforms.Mask` transforms shaped to broadcast against their weight
(``(1, 1, 1, C)`` for a convolution kernel), assigned in place when the level changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from aac.pruning.groups import LayerPlan, PruningAnalysis
from aac.pruning.masks import ChannelMasks
from aac.tf.keras_graph import POINTWISE
from aac.tf.models import TFModel
from aac.tf.transforms import Mask, add_transform, original

L = keras.layers
_TRANSPOSED = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
_SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)
_CONV = (L.Conv1D, L.Conv2D, L.Conv3D)


@dataclass(frozen=True)
class WeightAxes:
    """How one weight of a layer follows channels.

    :ivar output: axis indexed by the layer's output channels (None: independent of them).
    :ivar input: axis indexed by its input channels (None: independent of them).
    :ivar masked: masked while training (batch-norm moving statistics are only cut, except below).
    """

    output: int | None
    input: int | None = None
    masked: bool = True


def weight_axes(layer: Any) -> dict[str, WeightAxes] | None:
    """Weight name -> :class:`WeightAxes` for the layers filter pruning can change (the filter weight first);
    None for any other layer. Weights the layer does not have (``use_bias=False``, ``center=False``) are left out.

    A separable convolution's entry is its depthwise part (the pointwise part: :func:`planned_part`). A batch
    norm without ``scale`` cannot zero a channel through its offset alone (it leaves ``-mean / std``), so its
    moving mean is masked too: then a pruned channel is 0 in training (batch statistics of zeros) and in inference.
    """
    if isinstance(layer, _SEPARABLE):  # (..., channels, multiplier)
        axes = {"depthwise_kernel": WeightAxes(-2)}
    elif isinstance(layer, _DEPTHWISE):  # (..., channels, multiplier): a filter reads only its own channel
        axes = {"kernel": WeightAxes(-2), "bias": WeightAxes(0)}
    elif isinstance(layer, _TRANSPOSED):
        axes = {"kernel": WeightAxes(-2, -1), "bias": WeightAxes(0)}
    elif isinstance(layer, (*_CONV, L.Dense)):
        axes = {"kernel": WeightAxes(-1, -2), "bias": WeightAxes(0)}
    elif isinstance(layer, (L.BatchNormalization, L.GroupNormalization)):
        unscaled = isinstance(layer, L.BatchNormalization) and not layer.scale
        axes = {
            "gamma": WeightAxes(0),
            "beta": WeightAxes(0),
            "moving_mean": WeightAxes(0, masked=unscaled),
            "moving_variance": WeightAxes(0, masked=False),
        }
    else:
        return None
    return {name: a for name, a in axes.items() if getattr(layer, name, None) is not None}


@dataclass(frozen=True)
class PlannedPart:
    """What a layer name of the pruning analysis stands for: a Keras layer (its path) and the weights it covers."""

    path: str
    layer: Any
    axes: dict[str, WeightAxes]


def planned_part(layers: Mapping[str, Any], name: str) -> PlannedPart:
    """The layer (and weights) behind ``name``, a layer of the pruning analysis: a layer path, or the pointwise
    part of a separable convolution (``path + aac.tf.keras_graph.POINTWISE``: its pointwise kernel and bias)."""
    layer = layers.get(name)
    if layer is not None:
        return PlannedPart(name, layer, weight_axes(layer) or {})
    path = name.removesuffix(POINTWISE)
    layer = layers.get(path)
    if path == name or not isinstance(layer, _SEPARABLE):
        raise KeyError(f"'{name}' is neither a layer path nor the pointwise part of a separable convolution")
    axes = {"pointwise_kernel": WeightAxes(-1, -2), "bias": WeightAxes(0)}
    return PlannedPart(path, layer, {n: a for n, a in axes.items() if getattr(layer, n, None) is not None})


def filter_rows(part: PlannedPart) -> np.ndarray:
    """The part's stored (unmasked) filter weights, one row per output channel (what importance reads)."""
    name, axes = next((n, a) for n, a in part.axes.items() if a.output is not None)
    weight = np.asarray(original(part.layer, name).numpy(), dtype=np.float32)
    rows = np.moveaxis(weight, axes.output, 0)
    return rows.reshape(rows.shape[0], -1)


class TFChannelMasks(ChannelMasks[Mask]):
    """:class:`~aac.tf.transforms.Mask` transforms on the output-channel weights of the planned layers."""

    def __init__(self, owner: str, prepared: TFModel, analysis: PruningAnalysis) -> None:
        self._owner = owner
        self._layers = prepared.layers()
        super().__init__(analysis)

    def _attach(self, plan: LayerPlan) -> list[Mask]:
        assert plan.outputs is not None
        part = planned_part(self._layers, plan.layer)
        masks = []
        for name, axes in part.axes.items():
            if axes.output is None or not axes.masked:
                continue
            weight = original(part.layer, name)
            shape = [1] * len(weight.shape)
            shape[axes.output] = plan.outputs.channels
            masks.append(add_transform(part.layer, name, Mask(self._owner, shape=shape)))
        return masks

    def _assign(self, mask: Mask, values: np.ndarray) -> None:
        mask.update(values)

    def _values(self, mask: Mask) -> np.ndarray:
        return mask.numpy()
