"""What the three torch sparsity algorithms share: which layers, their masks, levels and statistics.

Every sparsified layer gets one weight transform (:mod:`aac.torch.transforms`) on its ``weight``:
the stored weight is never overwritten, so lowering the level brings old weights back, and
``strip()`` folds the masks in.

**The level.** ``compression_rate`` - getter and setter - is the *sparsity level of the sparsified
weights*: the fraction of the weights of the sparsified layers that the algorithm zeroes (NNCF's
getter reported whole-model sparsity while its setter set this level; here both sides use this
one quantity). Whole-model sparsity is in the statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from aac.core.api import CompressionScheduler, CompressionStage, StubCompressionScheduler
from aac.core.config import AlgorithmSection
from aac.core.errors import AacError, CompressionRateError
from aac.core.statistics import AlgorithmStatistics, Table
from aac.sparsity.levels import weighted_level
from aac.sparsity.scheduler import SparsityScheduler
from aac.sparsity.settings import SparsitySettings
from aac.torch.algorithm import TorchCompressionAlgorithm
from aac.torch.tracing import TorchModel
from aac.torch.transforms import WeightTransform, add_transform, original

#: layer types whose ``weight`` is sparsified (NNCF's list; norm layers are never sparsified)
SPARSIFIABLE: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear, nn.Embedding,
)

#: tolerance when comparing a level with its target
LEVEL_EPS = 1e-9


class SparsityError(AacError):
    """A sparsity algorithm was asked for something it cannot do; the message says what and where."""


@dataclass
class SparsifiedLayer:
    """One sparsified layer: its module path, the module and the transform on its weight."""

    name: str
    module: nn.Module
    transform: WeightTransform

    @property
    def weight(self) -> torch.Tensor:
        """The stored (untransformed) weight."""
        return original(self.module, "weight")

    @property
    def numel(self) -> int:
        return self.weight.numel()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)


class SparsityAlgorithmBase(TorchCompressionAlgorithm):
    """Layer selection, masks and statistics; subclasses decide what the masks are."""

    name: ClassVar[str] = "sparsity"

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(prepared, section)
        self.layers: list[SparsifiedLayer] = []
        candidates = [(path, m) for path, m in prepared.module.named_modules() if isinstance(m, SPARSIFIABLE)
                      and isinstance(getattr(m, "weight", None), torch.Tensor)]
        for path, module in candidates:
            if self.is_selected(path):
                transform = self._make_transform(path, module)
                add_transform(module, "weight", transform)
                self.layers.append(SparsifiedLayer(path, module, transform))
        if not self.layers:
            kinds = ", ".join(sorted({t.__name__ for t in SPARSIFIABLE}))
            found = f"{len(candidates)} such layer(s) exist but the scopes exclude them all" if candidates else "the model has none"
            raise SparsityError(
                f"{self.name} ({section.path}) found no layer to sparsify: it sparsifies {kinds} weights and {found}; "
                "check ignored_scopes / target_scopes"
            )

    def _make_transform(self, path: str, module: nn.Module) -> WeightTransform:
        raise NotImplementedError

    def _keep_mask(self, layer: SparsifiedLayer) -> torch.Tensor:
        """The layer's current keep/zero pattern as a tensor of 0/1 (as used in evaluation)."""
        raise NotImplementedError

    # -- measuring -------------------------------------------------------------------------
    @torch.no_grad()
    def _zeros(self) -> list[int]:
        """Zeroed weights per layer (what the masks remove, regardless of weights that happen to be 0)."""
        return [int(layer.numel - torch.count_nonzero(self._keep_mask(layer)).item()) for layer in self.layers]

    def measured_level(self) -> float:
        """The fraction of the sparsified weights that the masks zero right now."""
        total = sum(layer.numel for layer in self.layers)
        return sum(self._zeros()) / total if total else 0.0

    def _model_parameter_count(self) -> int:
        """Parameters of the model itself (not the masks or logits the transforms add)."""
        own = {id(p) for m in self.model.modules() if isinstance(m, WeightTransform) for p in m.parameters(recurse=False)}
        return sum(p.numel() for p in self.model.parameters() if id(p) not in own)

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
        model_params = self._model_parameter_count()
        scalars = {
            "sparsified_weights_sparsity": sum(zeros) / sparsified if sparsified else 0.0,
            "model_sparsity": sum(zeros) / model_params if model_params else 0.0,
            "sparsified_weights": float(sparsified),
            "model_parameters": float(model_params),
        }
        table = Table(f"Sparsity of the layers of {self.name}", self._layer_columns(), tuple(self._layer_rows(zeros)))
        return AlgorithmStatistics(self.name, scalars, [table])

    def _strip(self, model: nn.Module) -> nn.Module:
        """Fold the masks into the weights of ``model`` (a copy): zeros become real zeros."""
        for module in model.modules():
            if isinstance(module, WeightTransform) and module.owner == self.name:
                module.eval()  # deterministic masks (RB samples noise while training)
        return super()._strip(model)


class LevelSparsityAlgorithm(SparsityAlgorithmBase):
    """A sparsity algorithm with a level: schedule, ``compression_rate``, freezing, local/global mode."""

    adaptive: ClassVar[bool] = True
    default_schedule: ClassVar[str] = "polynomial"

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        self.settings = SparsitySettings.from_section(section.raw, section.path, default_schedule=self.default_schedule,
                                                      algorithm=self.name)
        super().__init__(prepared, section)
        self._frozen = False
        self._level = self.settings.initial_level
        self._layer_levels = {layer.name: self.settings.initial_level for layer in self.layers}
        self._scheduler: CompressionScheduler = (
            StubCompressionScheduler() if self.settings.local else SparsityScheduler(self, self.settings))
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
        value = float(level)
        if not 0.0 <= value <= 1.0:
            raise CompressionRateError(f"{self.name}: {what} must be a fraction in [0, 1], got {level}")
        return value

    def _set_global(self, level: float) -> None:
        value = self._check_level(level, "the sparsity level")
        self._level = value
        self._layer_levels = dict.fromkeys(self._layer_levels, value)
        self._apply_levels()

    def layer(self, name: str) -> SparsifiedLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise SparsityError(f"{self.name}: '{name}' is not a sparsified layer; sparsified: {', '.join(layer.name for layer in self.layers)}")

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
        statistics.scalars.update({
            "sparsity_level": self.compression_rate,
            "target_sparsity_level": self.target_level,
            "frozen": float(self._frozen),
        })
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
        """Restore levels and the frozen flag; the masks themselves come back with the model's state_dict."""
        if not state:
            return
        self._level = float(state["level"])
        saved = state.get("layer_levels", {})
        self._layer_levels = {name: float(saved.get(name, self._level)) for name in self._layer_levels}
        self.freeze(bool(state.get("frozen", False)))
        self._after_load()

    def _after_load(self) -> None:
        """Hook: bring derived state in line with loaded levels (without touching the masks)."""

    def iter_transforms(self) -> Iterator[tuple[SparsifiedLayer, WeightTransform]]:
        for layer in self.layers:
            yield layer, layer.transform
