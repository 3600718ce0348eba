"""``const_sparsity`` for Keras: masks start as ``weight != 0`` and never change.

The masks are the same ``Mask`` variables as magnitude sparsity's, so a checkpoint of a
``magnitude_sparsity`` run loads into a ``const_sparsity`` model and freezes that run's pattern.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import ConstSparsityAlgorithm
from aac.sparsity.tf.base import SparsifiedLayer, TFSparsity
from aac.tf.models import TFModel
from aac.tf.transforms import Mask, original


class TFConstSparsity(ConstSparsityAlgorithm, TFSparsity):
    """Constant sparsity for ``keras.Model``s."""

    def _make_transform(self, layer: Any, weight_name: str) -> Mask:
        weight = np.asarray(original(layer, weight_name).numpy())  # the stored weight, not what earlier transforms make of it
        return Mask(self.name, initial=(weight != 0).astype("float32"))

    def _keep_mask(self, layer: SparsifiedLayer) -> np.ndarray:
        return layer.transform.numpy()


def create(prepared: TFModel, section: AlgorithmSection, config: Config) -> TFConstSparsity:
    """The factory aac-core calls for a ``const_sparsity`` section on a Keras model."""
    return TFConstSparsity(prepared, section)
