"""``magnitude_sparsity`` for Keras: the neutral controller with :class:`aac.tf.transforms.Mask` transforms.

Masks are non-trainable variables assigned in place whenever the level is applied, so a traced
``model.fit`` step sees every new mask. Importance, selection, schedule, ``compression_rate`` and the
statistics are exactly those of the PyTorch part (:mod:`aac.sparsity.algorithm`, :mod:`aac.sparsity.levels`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import MagnitudeSparsityAlgorithm
from aac.sparsity.tf.base import SparsifiedLayer, TFSparsity
from aac.tf.models import TFModel
from aac.tf.transforms import Mask


class TFMagnitudeSparsity(MagnitudeSparsityAlgorithm, TFSparsity):
    """Magnitude sparsity for ``keras.Model``s (adaptive: the loop may set its ``compression_rate``)."""

    def _make_transform(self, layer: Any, weight_name: str) -> Mask:
        return Mask(self.name)

    def _keep_mask(self, layer: SparsifiedLayer) -> np.ndarray:
        return layer.transform.numpy()

    def _weight_array(self, layer: SparsifiedLayer) -> np.ndarray:  # type: ignore[override]
        return np.asarray(layer.weight.numpy(), dtype=np.float32)

    def _write_keep_mask(self, layer: SparsifiedLayer, keep: np.ndarray) -> None:  # type: ignore[override]
        layer.transform.update(keep)


def create(prepared: TFModel, section: AlgorithmSection, config: Config) -> TFMagnitudeSparsity:
    """The factory aac-core calls for a ``magnitude_sparsity`` section on a Keras model."""
    return TFMagnitudeSparsity(prepared, section)
