"""What the PyTorch and TensorFlow quantization controllers share: scopes per group, range entry and
override, the quantizer listing, the staged schedule, mixed precision and the saved state.
Framework-neutral: the framework part supplies ``self.section``, ``self.prepared.scopes``,
``self.is_selected``, ``self.weight_quantizers``, ``self.activation_sites`` and the hooks named below.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from aac.core.api import CompressionScheduler, CompressionStage
from aac.core.errors import AacError
from aac.quant.precision.controller import MixedPrecision
from aac.quant.precision.ids import plain_scope
from aac.quant.settings import ACTIVATIONS, WEIGHTS, QuantizationSettings, QuantizerSettings, RangeSettings, ScopeOverride, first_range
from aac.quant.staged import StagedQuantizationScheduler

if TYPE_CHECKING:
    from aac.core.config import AlgorithmSection
    from aac.core.scopes import ScopeSelection

logger = logging.getLogger("aac.quant")


@dataclass
class ActivationSite:
    """One activation quantizer: the tensor it quantizes (graph nodes ``tensors``) feeds ``consumers`` (layer
    paths; none for an operand of a functional call) and, through them, the weights ``feeds`` (weight keys)."""

    name: str
    quantizer: Any
    consumers: list[str] = field(default_factory=list)
    tensors: list[str] = field(default_factory=list)
    feeds: list[str] = field(default_factory=list)


class QuantizationError(AacError):
    """Quantization was asked for something it cannot do; the message says what and where."""


class QuantizationAlgorithmBase(MixedPrecision):
    """Mixin of the framework quantization controllers (not adaptive: bit width has no level to search)."""

    name: ClassVar[str] = "quantization"
    adaptive: ClassVar[bool] = False

    section: AlgorithmSection
    prepared: Any
    weight_quantizers: dict[str, Any]
    activation_sites: list[Any]
    _scheduler: CompressionScheduler
    if TYPE_CHECKING:  # provided by the framework's algorithm base class (later in the MRO: no stub here)

        def is_selected(self, path: str) -> bool: ...

        def _reinitialize_ranges(self, groups: tuple[str, ...]) -> None: ...

    def _init_scopes(self) -> None:
        """Read the settings and resolve the scopes of the groups, the range entries and the scope overrides."""
        self.settings = QuantizationSettings.from_section(self.section.raw, self.section.path)
        self._group_scopes = {name: self._group_selection(name) for name in (WEIGHTS, ACTIVATIONS)}
        self._range_scopes = [self._range_selection(entry) for entry in self.settings.ranges]
        where = f"{self.section.path}.scope_overrides"
        self._overrides = [
            (
                o,
                self.prepared.scopes.select(
                    [plain_scope(o.scope)], key=o.group, where=lambda e: where, strict=self.section.validate_scopes
                ),
            )
            for o in self.settings.overrides
        ]

    def _group_selection(self, group: str) -> tuple[ScopeSelection, ScopeSelection]:
        raw = self.section.get(group) or {}
        selections = []
        for key in ("ignored_scopes", "target_scopes"):
            entries = raw.get(key) or []
            entries = [entries] if isinstance(entries, str) else list(entries)
            selections.append(self.prepared.scopes.select(entries, key=key, where=lambda e: f"{self.section.path}.{group}"))
        return selections[0], selections[1]

    def _range_selection(self, entry: RangeSettings) -> tuple[ScopeSelection, ScopeSelection]:
        def where(e: str) -> str:
            return entry.path

        return (
            self.prepared.scopes.select(list(entry.ignored_scopes), key="ignored_scopes", where=where),
            self.prepared.scopes.select(list(entry.target_scopes), key="target_scopes", where=where),
        )

    def _group_selects(self, group: str, path: str) -> bool:
        ignored, targets = self._group_scopes[group]
        return self.is_selected(path) and path not in ignored and (not targets or path in targets)

    def quantizer_settings(self, group: str, names: Iterable[str]) -> tuple[QuantizerSettings, RangeSettings]:
        """The settings and the range entry of a quantizer of ``group`` that ``names`` (layer paths) describe.

        ``scope_overrides`` entries matching any of the names apply in config order; the last of them with
        an ``initializer.range`` of its own picks the range entry, else the section's ``initializer.range`` does.
        """
        names = list(names)
        matching: list[ScopeOverride] = [o for o, selection in self._overrides if o.group == group and any(n in selection for n in names)]
        ranges = next((o.ranges for o in reversed(matching) if o.ranges), None)
        if ranges is None:
            entry = first_range(self.settings.ranges, self._range_scopes, group, names)
        else:
            entry = first_range(ranges, [self._range_selection(r) for r in ranges], group, names)
        return self.settings.overridden(group, matching), entry

    def range_settings(self, group: str, layers: Iterable[str]) -> RangeSettings:
        """The range entry that applies to a quantizer of ``group`` at ``layers`` (see :meth:`quantizer_settings`)."""
        return self.quantizer_settings(group, layers)[1]

    def quantizers(self) -> Iterator[tuple[str, str, Any]]:
        """``(group, label, quantizer)`` for every quantizer."""
        for quantizer in self.weight_quantizers.values():
            yield WEIGHTS, quantizer.label, quantizer
        for site in self.activation_sites:
            yield ACTIVATIONS, site.quantizer.label, site.quantizer

    # -- staged schedule ----------------------------------------------------------------------
    def _make_scheduler(self) -> CompressionScheduler:
        """NNCF's staged scheduler when the section has (non-empty) ``params``, else one that only counts."""
        staged = self.settings.staged
        return StagedQuantizationScheduler(self, staged) if staged is not None else CompressionScheduler()

    def set_group_enabled(self, group: str, enabled: bool) -> None:
        """Switch every quantizer of ``group`` (``weights`` / ``activations``) on or off (staged quantization)."""
        for g, _, quantizer in self.quantizers():
            if g == group:
                quantizer.set_enabled(enabled)

    def reinitialize_ranges(self, groups: tuple[str, ...]) -> None:
        """Ranges of ``groups`` again, from the weights and the data given to initialize() (a group switched on)."""
        logger.info(
            "[aac] quantization: %s quantizers switched on at epoch %d; initializing their ranges again",
            " and ".join(groups),
            self._scheduler.current_epoch,
        )
        self._reinitialize_ranges(groups)

    def compression_stage(self) -> CompressionStage:
        scheduler = self._scheduler
        return scheduler.stage() if isinstance(scheduler, StagedQuantizationScheduler) else CompressionStage.FULLY_COMPRESSED

    # -- state --------------------------------------------------------------------------------
    def _get_algorithm_state(self) -> dict[str, Any]:
        """Ranges and signedness live in the model's own state (buffers/variables); the count is checked and
        the bit widths travel here (TensorFlow keeps them in Python)."""
        return {"quantizers": len(self.weight_quantizers) + len(self.activation_sites), **self._precision_state()}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        expected = len(self.weight_quantizers) + len(self.activation_sites)
        if state and state.get("quantizers", expected) != expected:
            raise QuantizationError(
                f"the saved quantization state has {state['quantizers']} quantizers but this model has {expected}; "
                "restore it into a model compressed with the same config"
            )
        self._load_precision_state(state)
