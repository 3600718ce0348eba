"""``const_sparsity``: keep a fixed sparsity pattern while fine-tuning.

Each sparsified layer's mask starts as ``weight != 0`` - so a model that was sparsified and stripped
keeps its zeros - and is never recomputed. The masks are the same buffers as magnitude sparsity's,
so the state_dict of a ``magnitude_sparsity`` run loads into a ``const_sparsity`` model and freezes
that run's pattern. There is no level to set (not adaptive).
"""

from __future__ import annotations

from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import ConstSparsityAlgorithm
from aac.sparsity.torch.base import TorchSparsityOps
from aac.torch.tracing import TorchModel


class ConstSparsity(ConstSparsityAlgorithm):
    """Constant sparsity for torch models: each mask starts as ``weight != 0``."""

    prepared: TorchModel

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(TorchSparsityOps(prepared, keep_nonzero=True), section)


def create(model: TorchModel, section: AlgorithmSection, config: Config) -> ConstSparsity:
    """The factory aac-core calls for a ``const_sparsity`` section."""
    return ConstSparsity(model, section)
