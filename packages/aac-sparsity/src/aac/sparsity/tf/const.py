"""``const_sparsity`` for Keras: masks start as ``weight != 0`` and never change.

The masks are the same ``Mask`` variables as magnitude sparsity's, so a checkpoint of a
``magnitude_sparsity`` run loads into a ``const_sparsity`` model and freezes that run's pattern.
"""

from __future__ import annotations

from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import ConstSparsityAlgorithm
from aac.sparsity.tf.base import TFSparsityOps
from aac.tf.models import TFModel


class TFConstSparsity(ConstSparsityAlgorithm):
    """Constant sparsity for ``keras.Model``s: each mask starts as ``weight != 0``."""

    prepared: TFModel

    def __init__(self, prepared: TFModel, section: AlgorithmSection) -> None:
        super().__init__(TFSparsityOps(prepared, keep_nonzero=True), section)


def create(prepared: TFModel, section: AlgorithmSection, config: Config) -> TFConstSparsity:
    """The factory aac-core calls for a ``const_sparsity`` section on a Keras model."""
    return TFConstSparsity(prepared, section)
