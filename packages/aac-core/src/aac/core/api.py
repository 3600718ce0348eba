"""The compression method API (NNCF's ``CompressionAlgorithm`` / ``CompressionScheduler`` /
``CompressionLoss``) and the controller protocol the accuracy-aware loops drive.

A compression method has three parts: the algorithm (it owns the compressed model and exposes the
knobs), its scheduler (it moves the compression level as training proceeds) and its loss (an extra
term added to the task loss). The loops only ever talk to :class:`CompressionController`, so any
object with those members - an aac algorithm, a composite of several, or a user's own class - can be
driven by them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from aac.core.errors import CompressionRateError
from aac.core.statistics import AlgorithmStatistics, CompressionStatistics

#: samples over which a probe re-estimates batch-norm statistics when the section sets no
#: ``initializer.batchnorm_adaptation.num_bn_adaptation_samples`` (a few batches: probes must stay cheap)
PROBE_BATCHNORM_SAMPLES = 512


def real_number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (a NumPy or 0-d tensor scalar too), else None.

    ``True`` and ``"0.5"`` are not numbers here: ``float()`` would quietly turn them into 1.0 and 0.5.
    """
    if isinstance(value, (bool, str, bytes)) or not (isinstance(value, (int, float)) or hasattr(value, "__float__")):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def checked_rate(value: Any, algorithm: str, what: str = "compression rate", maximum: float = 1.0) -> float:
    """``value`` as a rate in ``[0, maximum)``, or a CompressionRateError naming the algorithm and the value.

    Only real numbers pass: ``True`` or ``"0.5"`` would otherwise become 1.0 or fail deep inside, and a
    rate of 1.0 would remove every weight.
    """
    rate = real_number(value)
    if rate is None:
        raise CompressionRateError(
            f"{algorithm}: the {what} must be a number in [0, {maximum:g}), got {type(value).__name__} {value!r:.40}"
        )
    if not 0.0 <= rate < maximum:  # NaN fails too
        raise CompressionRateError(f"{algorithm}: the {what} must be in [0, {maximum:g}), got {rate}")
    return rate


def reiterable(data: Any) -> bool:
    """True if ``data`` can be iterated again (a list, a DataLoader, a tf.data.Dataset - not a generator)."""
    try:
        return data is not None and iter(data) is not data
    except TypeError:
        return False


class CompressionStage(enum.Enum):
    """How far an algorithm is along its schedule. Adding two stages gives the stage of the pair."""

    UNCOMPRESSED = 0
    PARTIALLY_COMPRESSED = 1
    FULLY_COMPRESSED = 2

    def __add__(self, other: CompressionStage) -> CompressionStage:
        return self if self is other else CompressionStage.PARTIALLY_COMPRESSED


class CompressionScheduler:
    """Moves an algorithm's hyper-parameters as training proceeds.

    ``step`` is called once per optimizer step and ``epoch_step`` once per epoch, both *before* the
    work they announce. The base class only counts; subclasses override :meth:`_on_step` /
    :meth:`_on_epoch` and extend :meth:`get_state` / :meth:`load_state` with what they must resume.
    """

    def __init__(self) -> None:
        self.current_step = -1
        self.current_epoch = -1

    def step(self, last: int | None = None) -> None:
        """Advance to the next optimizer step, or to step ``last`` when given."""
        self.current_step = self.current_step + 1 if last is None else last
        self._on_step()

    def epoch_step(self, last: int | None = None) -> None:
        """Advance to the next epoch, or to epoch ``last`` when given."""
        self.current_epoch = self.current_epoch + 1 if last is None else last
        self._on_epoch()

    def _on_step(self) -> None:
        """Hook for subclasses: react to a new optimizer step."""

    def _on_epoch(self) -> None:
        """Hook for subclasses: react to a new epoch."""

    def get_state(self) -> dict[str, Any]:
        return {"current_step": self.current_step, "current_epoch": self.current_epoch}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.current_step = int(state["current_step"])
        self.current_epoch = int(state["current_epoch"])


class StubCompressionScheduler(CompressionScheduler):
    """The scheduler of an algorithm whose level is set from outside (by the adaptive loop)."""


class CompressionLoss:
    """An extra loss term; calling the object (or :meth:`calculate`) returns it."""

    def forward(self) -> Any:
        """Return the loss value (a framework tensor, or ``0.0`` when there is nothing to add)."""
        return 0.0

    def __call__(self) -> Any:
        return self.forward()

    def calculate(self) -> Any:
        """NNCF's name for :meth:`forward`."""
        return self.forward()

    def statistics(self) -> dict[str, float]:
        return {}

    def get_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""


@runtime_checkable
class CompressionController(Protocol):
    """Everything the accuracy-aware loops use of a controller - and nothing more."""

    @property
    def compression_rate(self) -> float: ...

    @compression_rate.setter
    def compression_rate(self, value: float) -> None: ...

    @property
    def maximal_compression_rate(self) -> float: ...

    @property
    def scheduler(self) -> CompressionScheduler: ...

    @property
    def loss(self) -> CompressionLoss: ...

    def statistics(self) -> CompressionStatistics: ...

    def compression_stage(self) -> CompressionStage: ...

    def disable_scheduler(self) -> None: ...

    def get_state(self) -> dict[str, Any]: ...

    def load_state(self, state: Mapping[str, Any]) -> None: ...


CONTROLLER_MEMBERS = (
    "compression_rate",
    "maximal_compression_rate",
    "scheduler",
    "loss",
    "statistics",
    "compression_stage",
    "disable_scheduler",
    "get_state",
    "load_state",
)


def missing_controller_members(controller: Any) -> list[str]:
    """Members of :class:`CompressionController` that ``controller`` lacks.

    Looked up on the type, so properties are not evaluated: a fixed-level algorithm's
    ``compression_rate`` raises when read, yet the algorithm is a valid controller.
    """
    return [name for name in CONTROLLER_MEMBERS if not hasattr(type(controller), name) and not hasattr(controller, name)]


class CompressionAlgorithm:
    """Base class of every compression algorithm (the object NNCF calls a controller).

    Subclasses set ``name`` (the config's ``"algorithm"`` value) and ``adaptive`` (whether the
    adaptive loop may drive its :attr:`compression_rate`), build their scheduler and loss in
    ``__init__`` and implement :meth:`_collect_statistics`. Adaptive algorithms override the
    ``compression_rate`` property and setter; the getter and the setter must measure the same
    quantity, because the search compares what it set with what it reads back.
    """

    name: ClassVar[str] = "algorithm"
    adaptive: ClassVar[bool] = False

    def __init__(self, model: Any, config: Mapping[str, Any] | None = None, input_size: Any = None) -> None:
        self._model = model
        self.config: Mapping[str, Any] = config or {}
        self.input_size = input_size
        self._scheduler: CompressionScheduler = StubCompressionScheduler()
        self._loss: CompressionLoss = CompressionLoss()
        #: the data given to initialize() for probes' batch-norm adaptation: (loader, samples, how to read it)
        self._adaptation: tuple[Any, int, dict[str, Any]] | None = None

    # -- the parts -------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The model being compressed."""
        return self._model

    @property
    def loss(self) -> CompressionLoss:
        """The compression loss; ``controller.loss()`` returns its value."""
        return self._loss

    @property
    def scheduler(self) -> CompressionScheduler:
        return self._scheduler

    # -- level control ---------------------------------------------------------------------
    @property
    def compression_rate(self) -> float:
        raise CompressionRateError(
            f"algorithm '{self.name}' has no adjustable compression rate; it cannot be the adaptive algorithm of an accuracy-aware search"
        )

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        raise CompressionRateError(f"algorithm '{self.name}' has no adjustable compression rate")

    @property
    def maximal_compression_rate(self) -> float:
        return 1.0

    def reachable_compression_rate(self, rate: float) -> float:
        """The rate that ``compression_rate = rate`` would really give, without setting it.

        The adaptive search moves on these real levels, so that it never trains one level twice
        under two names. The default is a continuous grid (``rate`` itself); algorithms that round
        (filter pruning keeps blocks of filters) override it.
        """
        return rate

    def remember_adaptation_data(self, data_loader: Any, samples: int, **how: Any) -> None:
        """Keep a re-iterable ``data_loader`` (a reference, no copy) for :meth:`adapt_to_compression`.

        ``samples`` is the section's ``num_bn_adaptation_samples`` (0: :data:`PROBE_BATCHNORM_SAMPLES`),
        ``how`` what the framework needs to read a batch (torch: ``input_fn``, TF: ``batch_size``). A
        generator cannot be read twice, so it is not kept.
        """
        self._adaptation = (data_loader, samples or PROBE_BATCHNORM_SAMPLES, how) if reiterable(data_loader) else None

    def adapt_to_compression(self) -> bool:
        """Re-estimate what depends on the compression level without training; True if anything was done.

        The adaptive loop calls it when it *probes* a rate (set it, adapt, validate, undo): batch-norm
        statistics are re-estimated over the data given to :meth:`initialize`, by the framework's
        :meth:`_adapt_batchnorm`.
        """
        if self._adaptation is None:
            return False
        data_loader, samples, how = self._adaptation
        return self._adapt_batchnorm(data_loader, samples, **how)

    def _adapt_batchnorm(self, data_loader: Any, samples: int, **how: Any) -> bool:
        """Hook: re-estimate batch-norm statistics over ``samples`` samples of ``data_loader``; True if any changed."""
        return False

    def compression_stage(self) -> CompressionStage:
        return CompressionStage.FULLY_COMPRESSED

    def disable_scheduler(self) -> None:
        """Freeze the schedule: from now on only explicit ``compression_rate`` writes change the level."""
        self._scheduler = StubCompressionScheduler()

    @property
    def scheduler_disabled(self) -> bool:
        return isinstance(self._scheduler, StubCompressionScheduler)

    # -- lifecycle -------------------------------------------------------------------------
    def distributed(self) -> None:
        """Prepare for multi-process training (called once, before training starts)."""

    def initialize(self, data_loader: Any) -> None:
        """Data-dependent initialisation (quantization ranges, BN adaptation …)."""

    def strip(self) -> Any:
        """Return a plain model with compression folded in (masks applied, filters removed …)."""
        return self.strip_model(self.model)

    def strip_model(self, model: Any) -> Any:
        """Fold this algorithm's compression into ``model``; a composite chains its children."""
        return model

    def export_model(self, filename: str | Path, **kwargs: Any) -> Path:
        """Strip the model and write it for inference (format chosen from the file suffix)."""
        path = Path(filename)
        stripped = self.strip()
        self.prepare_for_export(stripped)
        self._export(stripped, path, **kwargs)
        self.finish_export(path)
        return path

    def prepare_for_export(self, stripped_model: Any) -> None:
        """Hook: last changes to the stripped model before it is written (a composite asks every child)."""

    def finish_export(self, path: Path) -> None:
        """Hook: post-process the written file (a composite asks every child)."""

    def _export(self, stripped_model: Any, path: Path, **kwargs: Any) -> None:
        raise NotImplementedError(
            f"algorithm '{self.name}' cannot export models; framework algorithms inherit export "
            "from their backend's base class (for example aac.torch.TorchCompressionAlgorithm)"
        )

    # -- reporting and state ---------------------------------------------------------------
    def statistics(self) -> CompressionStatistics:
        return CompressionStatistics([self._collect_statistics()])

    def _collect_statistics(self) -> AlgorithmStatistics:
        return AlgorithmStatistics(self.name)

    def get_state(self) -> dict[str, Any]:
        """Everything needed to put a fresh controller of the same model back to this one's state."""
        return {
            "algorithm": self.name,
            "scheduler": self._scheduler.get_state(),
            "scheduler_disabled": self.scheduler_disabled,
            "loss": self._loss.get_state(),
            "params": self._get_algorithm_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        if state.get("scheduler_disabled"):
            self.disable_scheduler()
        self._scheduler.load_state(state["scheduler"])
        self._loss.load_state(state.get("loss", {}))
        self._load_algorithm_state(state.get("params", {}))

    def _get_algorithm_state(self) -> dict[str, Any]:
        """Hook: the algorithm's own state (current level, frozen flag …), JSON-serialisable."""
        return {}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        """Hook: restore what :meth:`_get_algorithm_state` returned."""
