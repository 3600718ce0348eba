"""What a run records: one :class:`EpochRecord` per epoch and the final :class:`TrainingLoopStatistics`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aac.core.statistics import format_table

#: the phase of a probe record: a rate measured without training (``epoch`` is the epochs trained before it)
PROBE = "probe"


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of an accuracy-aware run (``epoch`` 0 is the validation before any training), or a probe.

    A probe (``phase == "probe"``) is not an epoch: the adaptive search set its rate on the weights
    of epoch ``epoch``, re-estimated batch-norm statistics and validated, then undid it. The last epoch
    of a search level says in ``level_end`` why the level ended (``feasible``, ``patience``,
    ``rejected``, ``early_stopping_fn`` or ``maximal_total_epochs``).
    """

    epoch: int
    phase: str  # "initial" | "search" | "early_exit" | "probe"
    compression_rate: float
    level_epoch: int
    metric: float | None
    budget: float | None
    step: float | None = None
    train_loss: float | None = None
    learning_rate_scale: float = 1.0
    seconds: float = 0.0
    level_end: str | None = None
    #: the optimizer's learning rate during the epoch (None: no optimizer, a probe, or not readable)
    learning_rate: float | None = None

    @property
    def validated(self) -> bool:
        return self.metric is not None

    @property
    def is_probe(self) -> bool:
        return self.phase == PROBE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TrainingLoopStatistics:
    """The result of an accuracy-aware run, describing the model that ``run()`` returned.

    NNCF's names (``uncompressed_accuracy``, ``compressed_accuracy``, ``compression_rate``,
    ``absolute_accuracy_degradation``, ``relative_accuracy_degradation`` in percent,
    ``accuracy_budget``) are kept; ``feasible`` says whether the budget was met, and ``history``
    holds every epoch of the search.
    """

    uncompressed_accuracy: float
    compressed_accuracy: float
    compression_rate: float
    accuracy_budget: float
    minimal_tolerable_accuracy: float
    allowed_degradation: str
    feasible: bool
    total_epochs: int
    stop_reason: str
    mode: str
    higher_is_better: bool = True
    log_dir: str | None = None
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def absolute_accuracy_degradation(self) -> float:
        drop = self.uncompressed_accuracy - self.compressed_accuracy
        return drop if self.higher_is_better else -drop

    @property
    def relative_accuracy_degradation(self) -> float:
        if self.uncompressed_accuracy == 0:
            return 0.0
        return 100.0 * self.absolute_accuracy_degradation / abs(self.uncompressed_accuracy)

    @property
    def probes(self) -> int:
        """How many rates the search probed (measured without training)."""
        return sum(r.is_probe for r in self.history)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "history"}
        data["absolute_accuracy_degradation"] = self.absolute_accuracy_degradation
        data["relative_accuracy_degradation"] = self.relative_accuracy_degradation
        data["history"] = [r.to_dict() for r in self.history]
        return data

    def to_str(self) -> str:
        rows = [
            ("mode", self.mode),
            ("uncompressed metric", self.uncompressed_accuracy),
            ("compressed metric", self.compressed_accuracy),
            ("compression rate", self.compression_rate),
            ("absolute degradation", self.absolute_accuracy_degradation),
            ("relative degradation (%)", self.relative_accuracy_degradation),
            ("allowed", self.allowed_degradation),
            ("accuracy budget", self.accuracy_budget),
            ("within budget", "yes" if self.feasible else "NO"),
            ("epochs trained", self.total_epochs),
            ("rates probed", self.probes),
            ("stopped because", self.stop_reason),
        ]
        return format_table(("accuracy-aware training", "result"), [(k, _fmt(v)) for k, v in rows])


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
