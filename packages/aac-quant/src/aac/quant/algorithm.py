"""What the PyTorch and TensorFlow quantization controllers share: scopes per group and range entry,
the quantizer listing and the saved state. Framework-neutral: the framework part supplies
``self.section``, ``self.prepared.scopes``, ``self.is_selected``, ``self.weight_quantizers`` and
``self.activation_sites``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aac.core.errors import AacError
from aac.quant.settings import ACTIVATIONS, WEIGHTS, QuantizationSettings, RangeSettings, first_range

if TYPE_CHECKING:
    from aac.core.config import AlgorithmSection
    from aac.core.scopes import ScopeSelection


class QuantizationError(AacError):
    """Quantization was asked for something it cannot do; the message says what and where."""


class QuantizationAlgorithmBase:
    """Mixin of the framework quantization controllers (not adaptive: bit width has no level to search)."""

    name: ClassVar[str] = "quantization"
    adaptive: ClassVar[bool] = False

    section: AlgorithmSection
    prepared: Any
    weight_quantizers: dict[str, Any]
    activation_sites: list[Any]
    if TYPE_CHECKING:  # provided by the framework's algorithm base class (later in the MRO: no stub here)
        def is_selected(self, path: str) -> bool: ...

    def _init_scopes(self) -> None:
        """Read the settings and resolve the scopes of the weights/activations groups and range entries."""
        self.settings = QuantizationSettings.from_section(self.section.raw, self.section.path)
        self._group_scopes = {name: self._group_selection(name) for name in (WEIGHTS, ACTIVATIONS)}
        self._range_scopes = [self._range_selection(entry) for entry in self.settings.ranges]

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

        return (self.prepared.scopes.select(list(entry.ignored_scopes), key="ignored_scopes", where=where),
                self.prepared.scopes.select(list(entry.target_scopes), key="target_scopes", where=where))

    def _group_selects(self, group: str, path: str) -> bool:
        ignored, targets = self._group_scopes[group]
        return self.is_selected(path) and path not in ignored and (not targets or path in targets)

    def range_settings(self, group: str, layers: Iterable[str]) -> RangeSettings:
        """The first ``initializer.range`` entry that applies to a quantizer of ``group`` at ``layers``."""
        return first_range(self.settings.ranges, self._range_scopes, group, list(layers))

    def quantizers(self) -> Iterator[tuple[str, str, Any]]:
        """``(group, label, quantizer)`` for every quantizer."""
        for quantizer in self.weight_quantizers.values():
            yield WEIGHTS, quantizer.label, quantizer
        for site in self.activation_sites:
            yield ACTIVATIONS, site.quantizer.label, site.quantizer

    def _get_algorithm_state(self) -> dict[str, Any]:
        """Ranges and signedness live in the model's own state (buffers/variables); only the count is checked."""
        return {"quantizers": len(self.weight_quantizers) + len(self.activation_sites)}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        expected = len(self.weight_quantizers) + len(self.activation_sites)
        if state and state.get("quantizers", expected) != expected:
            raise QuantizationError(
                f"the saved quantization state has {state['quantizers']} quantizers but this model has {expected}; "
                "restore it into a model compressed with the same config")
