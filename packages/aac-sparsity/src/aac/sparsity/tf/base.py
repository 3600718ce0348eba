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
from aac.tf.algorithm import TFCompressionAlgorithm
from aac.tf.models import iter_layers, parameter_count
from aac.tf.transforms import WeightTransform, original

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


class TFSparsity(TFCompressionAlgorithm):
    """The hooks of :class:`aac.sparsity.algorithm.SparsityAlgorithm` for Keras layers."""

    def _sparsifiable(self) -> Sequence[tuple[str, Any]]:
        return [(path, layer) for path, layer in iter_layers(self.model) if sparsified_weight(layer) is not None]

    def _sparsifiable_kinds(self) -> str:
        return ", ".join(sorted({kind.__name__ for kind, _ in SPARSIFIABLE}))

    def _sparsify(self, path: str, layer: Any) -> SparsifiedLayer:
        name = sparsified_weight(layer)
        assert name is not None
        transform = self.add_transform(layer, name, self._make_transform(layer, name))
        return SparsifiedLayer(path, layer, transform, name)

    def _make_transform(self, layer: Any, weight_name: str) -> WeightTransform:
        raise NotImplementedError

    def _keep_mask(self, layer: SparsifiedLayer) -> np.ndarray:
        """The layer's current keep pattern as a NumPy array of 0/1 (as used in evaluation)."""
        raise NotImplementedError

    def _zeros(self) -> list[int]:
        layers: list[SparsifiedLayer] = self.layers  # type: ignore[attr-defined]
        return [int(layer.numel - np.count_nonzero(self._keep_mask(layer))) for layer in layers]

    def _model_parameter_count(self) -> int:
        return parameter_count(self.model)
