"""The Keras part the sparsity algorithms share: which layers, their transforms, counting zeros and parameters.

Sparsified layers: ``Conv1D/2D/3D``, ``Conv1DTranspose/2DTranspose/3DTranspose``, ``DepthwiseConv1D/2D``
and ``Dense`` (their ``kernel``) and ``Embedding`` (its ``embeddings``); never norm layers or biases.
Each gets one weight transform; the stored weight is never overwritten. Layer names in statistics
and ``set_sparsity_level(level, layer)`` are aac-tf's layer paths (``"block/conv2d"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from aac.sparsity import algorithm
from aac.tf.algorithm import TFFramework
from aac.tf.models import TFModel, iter_layers, parameter_count
from aac.tf.transforms import Mask, WeightTransform, add_transform, original

L = keras.layers
#: layer types whose weight is sparsified, and the name of that weight (the same kinds as on PyTorch)
SPARSIFIABLE: tuple[tuple[type, str], ...] = (
    (L.Conv1D, "kernel"),
    (L.Conv2D, "kernel"),
    (L.Conv3D, "kernel"),
    (L.Conv1DTranspose, "kernel"),
    (L.Conv2DTranspose, "kernel"),
    (L.Conv3DTranspose, "kernel"),
    (L.DepthwiseConv1D, "kernel"),
    (L.DepthwiseConv2D, "kernel"),
    (L.Dense, "kernel"),
    (L.Embedding, "embeddings"),
)


def sparsified_weight(layer: Any) -> str | None:
    """The name of the weight sparsity acts on in ``layer`` (None: not a sparsifiable layer)."""
    for kind, name in SPARSIFIABLE:
        if isinstance(layer, kind) and isinstance(getattr(layer, name, None), keras.Variable):
            return name
    return None


@dataclass
class SparsifiedLayer(algorithm.SparsifiedLayer):
    """One sparsified Keras layer: its path, the layer, the transform and the name of the weight."""

    weight_name: str = "kernel"

    @property
    def weight(self) -> Any:
        """The stored (untransformed) ``keras.Variable``."""
        return original(self.module, self.weight_name)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.weight.shape)


class TFSparsityOps:
    """:class:`aac.sparsity.algorithm.MagnitudeOps` for Keras layers: a :class:`~aac.tf.transforms.Mask` per weight.

    :param keep_nonzero: start each mask as ``weight != 0`` (``const_sparsity``: a stripped sparse model
        keeps its zeros) instead of all ones.
    """

    def __init__(self, prepared: TFModel, *, keep_nonzero: bool = False) -> None:
        self.framework = TFFramework(prepared)
        self._model = prepared.model
        self._keep_nonzero = keep_nonzero

    # -- every sparsity algorithm ------------------------------------------------------------
    def sparsifiable(self) -> Sequence[tuple[str, Any]]:
        return [(path, layer) for path, layer in iter_layers(self._model) if sparsified_weight(layer) is not None]

    def sparsifiable_kinds(self) -> str:
        return ", ".join(sorted({kind.__name__ for kind, _ in SPARSIFIABLE}))

    def sparsify(self, path: str, layer: Any, owner: str) -> SparsifiedLayer:
        name = sparsified_weight(layer)
        if name is None:
            raise algorithm.SparsityError(f"'{path}' ({type(layer).__name__}) has no weight sparsity acts on")
        transform = add_transform(layer, name, self.make_transform(layer, name, owner))
        return SparsifiedLayer(path, layer, transform, name)

    def make_transform(self, layer: Any, weight_name: str, owner: str) -> WeightTransform:
        """The transform a newly sparsified layer's weight gets."""
        if not self._keep_nonzero:
            return Mask(owner)
        weight = np.asarray(original(layer, weight_name).numpy())  # the stored weight, not what earlier transforms make of it
        return Mask(owner, initial=(weight != 0).astype("float32"))

    def keep_mask(self, layer: algorithm.SparsifiedLayer) -> np.ndarray:
        return np.asarray(layer.transform.numpy())

    def parameter_count(self) -> int:
        return parameter_count(self._model)

    def strip(self, model: Any, owner: str) -> Any:
        return self.framework.fold(model, owner)  # outside a training call every mask is deterministic

    # -- magnitude sparsity --------------------------------------------------------------------
    def weight_array(self, layer: algorithm.SparsifiedLayer) -> np.ndarray:
        return np.asarray(original(layer.module, layer.weight_name).numpy(), dtype=np.float32)

    def write_keep_mask(self, layer: algorithm.SparsifiedLayer, keep: np.ndarray) -> None:
        layer.transform.update(keep)
