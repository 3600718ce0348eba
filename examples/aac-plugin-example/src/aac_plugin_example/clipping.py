"""The ``weight_clipping`` algorithm: every weight of the model stays inside ``[-threshold, threshold]``.

It works on any model whose ``state_dict()`` maps names to numbers or (nested) lists of numbers,
which is what aac-core's generic backend handles. A fixed-level algorithm needs little: clip once
when applied, keep clipping as training goes on (the scheduler), report what it did (statistics)
and save what it must resume (state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aac.core import AlgorithmSection, AlgorithmStatistics, CompressionAlgorithm, CompressionScheduler, Config


def clip_value(value: Any, threshold: float) -> tuple[Any, int]:
    """``value`` with every number clipped, and how many numbers changed; other leaves are kept."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list, tuple)):
        return value, 0
    if isinstance(value, (int, float)):
        clipped = min(max(value, -threshold), threshold)
        return clipped, int(clipped != value)
    parts = [clip_value(item, threshold) for item in value]
    return type(value)(item for item, _ in parts), sum(changed for _, changed in parts)


def clip_model(model: Any, threshold: float, ignored: Iterable[str] = ()) -> int:
    """Clip ``model``'s weights in place (through its state dict); return how many values changed."""
    skip = set(ignored)
    state = model.state_dict()
    changed = 0
    clipped: dict[str, Any] = {}
    for key, value in state.items():
        clipped[key], count = (value, 0) if key in skip else clip_value(value, threshold)
        changed += count
    model.load_state_dict(clipped)
    return changed


class ReclipEveryEpoch(CompressionScheduler):
    """Training moves weights out of range again; clip at the start of every epoch."""

    def __init__(self, algorithm: WeightClipping) -> None:
        super().__init__()
        self._algorithm = algorithm

    def _on_epoch(self) -> None:
        self._algorithm.clip()


class WeightClipping(CompressionAlgorithm):
    """Fixed-level algorithm: the threshold is its level, and the adaptive loop never changes it."""

    name = "weight_clipping"
    adaptive = False

    def __init__(self, model: Any, threshold: float = 1.0, ignored: Iterable[str] = (), reclip_every_epoch: bool = True) -> None:
        super().__init__(model, {"threshold": threshold})
        self.threshold = float(threshold)
        self.ignored = tuple(ignored)
        self.clipped_total = 0
        if reclip_every_epoch:
            self._scheduler = ReclipEveryEpoch(self)
        self.clip()

    def clip(self) -> int:
        changed = clip_model(self.model, self.threshold, self.ignored)
        self.clipped_total += changed
        return changed

    def strip_model(self, model: Any) -> Any:
        clip_model(model, self.threshold, self.ignored)
        return model

    def _collect_statistics(self) -> AlgorithmStatistics:
        return AlgorithmStatistics(self.name, {"threshold": self.threshold, "clipped_values": float(self.clipped_total)})

    def _get_algorithm_state(self) -> dict[str, Any]:
        return {"clipped_total": self.clipped_total}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        self.clipped_total = int(state["clipped_total"])


def build(model: Any, section: AlgorithmSection, config: Config) -> WeightClipping:
    """The factory named in the plugin's ``AlgorithmSpec``; ``section`` is already validated."""
    return WeightClipping(
        model,
        threshold=section.params.get("threshold", 1.0),
        ignored=section.ignored_scopes,
        reclip_every_epoch=section.params.get("reclip_every_epoch", True),
    )
