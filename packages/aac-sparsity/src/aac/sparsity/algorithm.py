"""The sparsity controllers, minus the framework: layers, levels, schedule, rate, state and statistics.

Each controller receives a :class:`SparsityOps` (for magnitude sparsity a :class:`MagnitudeOps`, for
RB sparsity an :class:`RBOps`), implemented once for PyTorch (:mod:`aac.sparsity.torch`) and once for
Keras (:mod:`aac.sparsity.tf`): list the sparsifiable layers, attach a transform to one, read a
layer's keep mask, count the model's parameters, and for magnitude sparsity read a weight / write a
keep mask as NumPy arrays. Everything that decides *which* weights are zero, the level's semantics,
the schedule and the statistics lives here and is shared; the framework classes
(``aac.sparsity.torch.magnitude.MagnitudeSparsity`` ...) only bind the ops to a prepared model.

**The level.** ``compression_rate`` - getter and setter - is the *sparsity level of the sparsified
weights*: the fraction of the weights of the sparsified layers that the algorithm zeroes (NNCF's
getter reported whole-model sparsity while its setter set this level; here both sides use this
one quantity). Whole-model sparsity is in the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from aac.core.api import CompressionLoss, CompressionScheduler, CompressionStage, StubCompressionScheduler, checked_rate
from aac.core.config import AlgorithmSection
from aac.core.errors import AacError
from aac.core.framework import Framework, FrameworkAlgorithm
from aac.core.statistics import AlgorithmStatistics, Table
from aac.sparsity.levels import global_masks, importance, local_masks, weighted_level
from aac.sparsity.scheduler import SparsityScheduler
from aac.sparsity.settings import SparsitySettings

#: tolerance when comparing a level with its target
LEVEL_EPS = 1e-9


class SparsityError(AacError):
    """A sparsity algorithm was asked for something it cannot do; the message says what and where."""


@dataclass
class SparsifiedLayer:
    """One sparsified layer: its path, the layer object and the transform on its weight.

    Framework parts subclass it to give :attr:`shape` (and a ``weight`` property: the stored weight).
    """

    name: str
    module: Any
    transform: Any

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class SparsityOps(Protocol):
    """What every sparsity algorithm needs of a framework, for one prepared model."""

    @property
    def framework(self) -> Framework:
        """What every algorithm needs of the backend (copy, fold, export, batch-norm adaptation)."""
        ...

    def sparsifiable(self) -> Sequence[tuple[str, Any]]:
        """``(path, layer)`` of every layer of the model whose weight could be sparsified (before scopes)."""
        ...

    def sparsifiable_kinds(self) -> str:
        """The sparsifiable layer types, for the error when nothing is selected."""
        ...

    def sparsify(self, path: str, layer: Any, owner: str) -> SparsifiedLayer:
        """Attach a transform owned by ``owner`` to ``layer``'s weight."""
        ...

    def keep_mask(self, layer: SparsifiedLayer) -> np.ndarray:
        """The layer's keep pattern (as in evaluation) as a 0/1 array of the weight's shape."""
        ...

    def parameter_count(self) -> int:
        """Parameters of the model itself (not the masks or logits the transforms add)."""
        ...

    def strip(self, model: Any, owner: str) -> Any:
        """Fold ``owner``'s masks of ``model`` (a copy) into its weights, deterministically: zeros become real zeros."""
        ...


class MagnitudeOps(SparsityOps, Protocol):
    """What magnitude sparsity needs on top: weights in, keep masks out, as NumPy arrays."""

    def weight_array(self, layer: SparsifiedLayer) -> np.ndarray:
        """The layer's stored (unmasked) weight."""
        ...

    def write_keep_mask(self, layer: SparsifiedLayer, keep: np.ndarray) -> None:
        """Make the layer's mask ``keep`` (a boolean array of the weight's shape)."""
        ...


class RBOps(SparsityOps, Protocol):
    """What RB sparsity needs on top: the trainable masks' loss, freezing them, and the levels the loss pursues."""

    def make_loss(self, algorithm: RBSparsityAlgorithm) -> CompressionLoss:
        """The loss that pulls the kept fraction of ``algorithm``'s layers towards its levels."""
        ...

    def set_frozen(self, layers: Sequence[SparsifiedLayer], frozen: bool) -> None:
        """Stop (or resume) training the masks of ``layers``."""
        ...

    def set_levels(self, layers: Sequence[SparsifiedLayer], levels: Mapping[str, float]) -> None:
        """Tell the masks the level each layer pursues (a backend whose loss reads Python values does nothing)."""
        ...


class SparsityAlgorithm(FrameworkAlgorithm):
    """Layer selection and statistics; subclasses decide what the masks are."""

    name: ClassVar[str] = "sparsity"
    layers: list[SparsifiedLayer]

    def __init__(self, ops: SparsityOps, section: AlgorithmSection) -> None:
        super().__init__(ops.framework, section)
        self.ops = ops
        candidates = list(ops.sparsifiable())
        self.layers = [ops.sparsify(path, layer, self.name) for path, layer in candidates if self.is_selected(path)]
        if not self.layers:
            found = f"{len(candidates)} such layer(s) exist but the scopes exclude them all" if candidates else "the model has none"
            raise SparsityError(
                f"{self.name} ({section.path}) found no layer to sparsify: it sparsifies {ops.sparsifiable_kinds()} weights "
                f"and {found}; check ignored_scopes / target_scopes"
            )

    def _zeros(self) -> list[int]:
        """Zeroed weights per layer (what the masks remove, regardless of weights that happen to be 0)."""
        return [layer.numel - int(np.count_nonzero(self.ops.keep_mask(layer))) for layer in self.layers]

    def _strip(self, model: Any) -> Any:
        return self.ops.strip(model, self.name)

    # -- measuring -------------------------------------------------------------------------
    def measured_level(self) -> float:
        """The fraction of the sparsified weights that the masks zero right now."""
        total = sum(layer.numel for layer in self.layers)
        return sum(self._zeros()) / total if total else 0.0

    # -- reporting ---------------------------------------------------------------------------
    def _layer_columns(self) -> tuple[str, ...]:
        return ("layer", "weight shape", "sparsity level", "share of sparsified weights")

    def _layer_rows(self, zeros: list[int]) -> list[tuple[Any, ...]]:
        total = sum(layer.numel for layer in self.layers)
        return [
            (layer.name, "x".join(map(str, layer.shape)), round(z / layer.numel, 4), round(layer.numel / total, 4))
            for layer, z in zip(self.layers, zeros, strict=True)
        ]

    def _collect_statistics(self) -> AlgorithmStatistics:
        zeros = self._zeros()
        sparsified = sum(layer.numel for layer in self.layers)
        model_params = self.ops.parameter_count()
        scalars = {
            "sparsified_weights_sparsity": sum(zeros) / sparsified if sparsified else 0.0,
            "model_sparsity": sum(zeros) / model_params if model_params else 0.0,
            "sparsified_weights": float(sparsified),
            "model_parameters": float(model_params),
        }
        table = Table(f"Sparsity of the layers of {self.name}", self._layer_columns(), tuple(self._layer_rows(zeros)))
        return AlgorithmStatistics(self.name, scalars, [table])


class LevelSparsityAlgorithm(SparsityAlgorithm):
    """A sparsity algorithm with a level: schedule, ``compression_rate``, freezing, local/global mode."""

    adaptive: ClassVar[bool] = True
    default_schedule: ClassVar[str] = "polynomial"

    def __init__(self, ops: SparsityOps, section: AlgorithmSection) -> None:
        self.settings = SparsitySettings.from_section(
            section.raw, section.path, default_schedule=self.default_schedule, algorithm=self.name
        )
        super().__init__(ops, section)
        self._frozen = False
        self._level = self.settings.initial_level
        self._layer_levels = {layer.name: self.settings.initial_level for layer in self.layers}
        self._scheduler: CompressionScheduler = (
            StubCompressionScheduler() if self.settings.local else SparsityScheduler(self, self.settings)
        )
        self._apply_levels()

    # -- what subclasses do with a level ----------------------------------------------------
    def _apply_levels(self) -> None:
        """Make the masks (or the loss) follow ``self._level`` / ``self._layer_levels``."""
        raise NotImplementedError

    def _on_freeze(self, frozen: bool) -> None:
        """Hook: the masks were frozen (or unfrozen)."""

    # -- the scheduler's target (aac.sparsity.scheduler.LevelTarget) ------------------------
    @property
    def frozen(self) -> bool:
        return self._frozen

    def set_level(self, level: float) -> None:
        """Set the (global) level of the sparsified weights; ignored while frozen, like NNCF."""
        if self._frozen:
            return
        self._set_global(level)

    def freeze(self, freeze: bool = True) -> None:
        """Stop (or resume) changing the masks."""
        if freeze != self._frozen:
            self._frozen = freeze
            self._on_freeze(freeze)

    # -- levels ----------------------------------------------------------------------------------
    def _check_level(self, level: float, what: str) -> float:
        return checked_rate(level, self.name, what)

    def _set_global(self, level: float) -> None:
        value = self._check_level(level, "the sparsity level")
        self._level = value
        self._layer_levels = dict.fromkeys(self._layer_levels, value)
        self._apply_levels()

    def layer(self, name: str) -> SparsifiedLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise SparsityError(
            f"{self.name}: '{name}' is not a sparsified layer; sparsified: {', '.join(layer.name for layer in self.layers)}"
        )

    def set_sparsity_level(self, level: float, layer: str | None = None) -> None:
        """NNCF's call: the level of all sparsified weights, or (``local`` mode) of one layer."""
        if layer is None:
            self._set_global(level)
            return
        if not self.settings.local:
            raise SparsityError(
                f"{self.name}: a per-layer level needs params.sparsity_level_setting_mode 'local'; in 'global' mode "
                "call set_sparsity_level(level) without a layer"
            )
        self._layer_levels[self.layer(layer).name] = self._check_level(level, f"the level of '{layer}'")
        self._apply_levels()

    @property
    def layer_levels(self) -> dict[str, float]:
        """Each sparsified layer's level (all equal in ``global`` mode)."""
        return dict(self._layer_levels)

    @property
    def compression_rate(self) -> float:
        """The sparsity level of the sparsified weights (the setter sets exactly this quantity)."""
        if not self.settings.local:
            return self._level
        return weighted_level([self._layer_levels[layer.name] for layer in self.layers], [layer.numel for layer in self.layers])

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        """Set the level of the sparsified weights (every layer, in ``local`` mode), even when frozen."""
        level = self._check_level(value, "compression_rate")
        self._before_rate_write()
        self._set_global(level)

    def _before_rate_write(self) -> None:
        """Hook: an explicit ``compression_rate`` write is about to happen."""

    @property
    def target_level(self) -> float:
        return self.settings.target_level

    def compression_stage(self) -> CompressionStage:
        if self.settings.local or self.scheduler_disabled:
            return CompressionStage.FULLY_COMPRESSED
        level = self._level
        if level >= self.target_level - LEVEL_EPS:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED if level > 0 else CompressionStage.UNCOMPRESSED

    # -- reporting and state ------------------------------------------------------------------------
    def _collect_statistics(self) -> AlgorithmStatistics:
        statistics = super()._collect_statistics()
        statistics.scalars.update(
            {
                "compression_rate": self.compression_rate,
                "target_sparsity_level": self.target_level,
                "frozen": float(self._frozen),
            }
        )
        if isinstance(self._scheduler, SparsityScheduler):
            statistics.scalars["scheduled_sparsity_level"] = self._scheduler.current_level
        return statistics

    def _layer_columns(self) -> tuple[str, ...]:
        return (*super()._layer_columns(), "target level")

    def _layer_rows(self, zeros: list[int]) -> list[tuple[Any, ...]]:
        rows = super()._layer_rows(zeros)
        return [(*row, round(self._layer_levels[layer.name], 4)) for row, layer in zip(rows, self.layers, strict=True)]

    def _get_algorithm_state(self) -> dict[str, Any]:
        return {"level": self._level, "layer_levels": dict(self._layer_levels), "frozen": self._frozen}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        """Restore levels and the frozen flag; the masks themselves come back with the model's weights."""
        if not state:
            return
        self._level = float(state["level"])
        saved = state.get("layer_levels", {})
        self._layer_levels = {name: float(saved.get(name, self._level)) for name in self._layer_levels}
        self.freeze(bool(state.get("frozen", False)))
        self._after_load()

    def _after_load(self) -> None:
        """Hook: bring derived state in line with loaded levels (without touching the masks)."""


class MagnitudeSparsityAlgorithm(LevelSparsityAlgorithm):
    """``magnitude_sparsity``: zero the least important weights at the level the schedule (or the adaptive loop) sets.

    The masks are recomputed from the current weights whenever the level is applied - at every epoch
    (every optimizer step with ``update_per_optimizer_step``) until ``sparsity_freeze_epoch``, and at
    every ``compression_rate`` write. Importance and selection are the rules of
    :mod:`aac.sparsity.levels`, so ``compression_rate`` reads back what was set (to ``0.5 / n``).
    """

    name: ClassVar[str] = "magnitude_sparsity"
    default_schedule: ClassVar[str] = "polynomial"

    ops: MagnitudeOps

    def __init__(self, ops: MagnitudeOps, section: AlgorithmSection) -> None:
        self._thresholds: list[float] = []
        super().__init__(ops, section)

    def _apply_levels(self) -> None:
        kind = self.settings.weight_importance
        scores = [importance(self.ops.weight_array(layer), kind) for layer in self.layers]
        if self.settings.local:
            masks, self._thresholds = local_masks(scores, [self._layer_levels[layer.name] for layer in self.layers])
        else:
            masks, threshold = global_masks(scores, self._level)
            self._thresholds = [threshold] * len(self.layers)
        for layer, keep in zip(self.layers, masks, strict=True):
            self.ops.write_keep_mask(layer, keep)

    def _after_load(self) -> None:
        self._thresholds = []  # thresholds are recomputed at the next level change

    def _layer_columns(self) -> tuple[str, ...]:
        return (*super()._layer_columns(), "threshold")

    def _layer_rows(self, zeros: list[int]) -> list[tuple[Any, ...]]:
        rows = super()._layer_rows(zeros)
        thresholds = self._thresholds or [float("nan")] * len(rows)
        return [(*row, _finite(t)) for row, t in zip(rows, thresholds, strict=True)]

    def _collect_statistics(self) -> AlgorithmStatistics:
        statistics = super()._collect_statistics()
        if self._thresholds and not self.settings.local:
            statistics.scalars["threshold"] = _finite(self._thresholds[0])
        return statistics


class ConstSparsityAlgorithm(SparsityAlgorithm):
    """``const_sparsity``: masks start as ``weight != 0`` and never change; no level to set (not adaptive)."""

    name: ClassVar[str] = "const_sparsity"
    adaptive: ClassVar[bool] = False

    def __init__(self, ops: SparsityOps, section: AlgorithmSection) -> None:
        super().__init__(ops, section)
        self._scheduler = CompressionScheduler()  # counts epochs; nothing to schedule

    def _collect_statistics(self) -> AlgorithmStatistics:
        statistics = super()._collect_statistics()
        statistics.scalars["sparsity_level"] = statistics.scalars["sparsified_weights_sparsity"]
        return statistics


class RBSparsityAlgorithm(LevelSparsityAlgorithm):
    """``rb_sparsity``: trainable masks whose loss pulls the kept fraction towards the level.

    The rate is the level the loss pursues; writing it unfreezes the masks. The ops provide the
    trainable masks, their loss and freezing them.
    """

    name: ClassVar[str] = "rb_sparsity"
    default_schedule: ClassVar[str] = "exponential"
    ops: RBOps

    def __init__(self, ops: RBOps, section: AlgorithmSection) -> None:
        super().__init__(ops, section)
        self._loss = ops.make_loss(self)

    def _apply_levels(self) -> None:
        """Nothing to recompute: the loss reads the levels (from the masks, where the backend keeps them there)."""
        self.ops.set_levels(self.layers, self._layer_levels)

    def _after_load(self) -> None:
        self.ops.set_levels(self.layers, self._layer_levels)

    def _on_freeze(self, frozen: bool) -> None:
        self.ops.set_frozen(self.layers, frozen)

    def _collect_statistics(self) -> AlgorithmStatistics:
        statistics = super()._collect_statistics()
        statistics.scalars["mean_keep_probability"] = self._loss.statistics()["mean_keep_probability"]
        return statistics

    def _before_rate_write(self) -> None:
        self.freeze(False)

    def compression_stage(self) -> CompressionStage:
        """Fully compressed once the schedule is at its target *and* the masks are within ``eps`` of it.

        The level is only what the loss pursues; an early-exit run must not stop while the masks
        still keep (nearly) every weight.
        """
        stage = super().compression_stage()
        if stage is CompressionStage.FULLY_COMPRESSED and not self.settings.local:
            if self.measured_level() < self._level - self.settings.adaptive_eps:
                return CompressionStage.PARTIALLY_COMPRESSED
        return stage


def _finite(value: float) -> float:
    """Thresholds are -inf when nothing is pruned; report 0 instead (tables and TensorBoard need numbers)."""
    return value if value == value and value not in (float("inf"), float("-inf")) else 0.0
