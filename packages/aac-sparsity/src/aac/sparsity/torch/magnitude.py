"""``magnitude_sparsity`` for torch: the neutral controller (:class:`~aac.sparsity.algorithm.MagnitudeSparsityAlgorithm`)
with ``Mask`` transforms on the modules' weights (:class:`~aac.sparsity.torch.base.TorchSparsityOps`).

The masks are recomputed from the current weights whenever the level is applied - at every epoch
(every optimizer step with ``update_per_optimizer_step``) until ``sparsity_freeze_epoch``, and at
every ``compression_rate`` write. Importance and selection are the framework-neutral rules of
:mod:`aac.sparsity.levels`, so ``compression_rate`` reads back what was set (to ``0.5 / n``).
"""

from __future__ import annotations

from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import MagnitudeSparsityAlgorithm
from aac.sparsity.torch.base import TorchSparsityOps
from aac.torch.tracing import TorchModel


class MagnitudeSparsity(MagnitudeSparsityAlgorithm):
    """Magnitude sparsity for torch models (adaptive: the loop may set its ``compression_rate``)."""

    prepared: TorchModel

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(TorchSparsityOps(prepared), section)


def create(model: TorchModel, section: AlgorithmSection, config: Config) -> MagnitudeSparsity:
    """The factory aac-core calls for a ``magnitude_sparsity`` section."""
    return MagnitudeSparsity(model, section)
