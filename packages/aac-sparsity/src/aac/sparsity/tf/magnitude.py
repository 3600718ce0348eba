"""``magnitude_sparsity`` for Keras: the neutral controller with :class:`aac.tf.transforms.Mask` transforms.

Masks are non-trainable variables assigned in place whenever the level is applied, so a traced
``model.fit`` step sees every new mask. Importance, selection, schedule, ``compression_rate`` and the
statistics are exactly those of the PyTorch part (:mod:`aac.sparsity.algorithm`, :mod:`aac.sparsity.levels`).
"""

from __future__ import annotations

from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import MagnitudeSparsityAlgorithm
from aac.sparsity.tf.base import TFSparsityOps
from aac.tf.models import TFModel


class TFMagnitudeSparsity(MagnitudeSparsityAlgorithm):
    """Magnitude sparsity for ``keras.Model``s (adaptive: the loop may set its ``compression_rate``)."""

    prepared: TFModel

    def __init__(self, prepared: TFModel, section: AlgorithmSection) -> None:
        super().__init__(TFSparsityOps(prepared), section)


def create(prepared: TFModel, section: AlgorithmSection, config: Config) -> TFMagnitudeSparsity:
    """The factory aac-core calls for a ``magnitude_sparsity`` section on a Keras model."""
    return TFMagnitudeSparsity(prepared, section)
