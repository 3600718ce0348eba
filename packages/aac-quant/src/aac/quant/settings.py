"""A ``quantization`` config section as typed objects with NNCF's defaults.

The JSON Schema has already checked types and ranges when this runs, and core has moved the legacy
``initializer.type`` / ``initializer.num_init_steps`` spellings under ``initializer.range``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aac.core.errors import ConfigError, ConfigProblem

SYMMETRIC, ASYMMETRIC = "symmetric", "asymmetric"
WEIGHTS, ACTIVATIONS = "weights", "activations"
PRESETS = {"performance": (SYMMETRIC, SYMMETRIC), "mixed": (SYMMETRIC, ASYMMETRIC)}


def _scopes(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class QuantizerSettings:
    """How the quantizers of one group (weights or activations) quantize.

    :ivar signed: symmetric mode only; None means "decide from the range statistics".
    :ivar narrow_range: drop the lowest level of a signed grid so that it is symmetric around zero
        (``[-127, 127]`` at 8 bits); used for weights, as in NNCF.
    """

    mode: str = SYMMETRIC
    bits: int = 8
    signed: bool | None = None
    per_channel: bool = False
    narrow_range: bool = False
    ignored_scopes: tuple[str, ...] = ()
    target_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RangeSettings:
    """One ``initializer.range`` entry."""

    type: str = "mixed_min_max"
    num_init_samples: int = 256
    num_init_steps: int | None = None
    min_percentile: float = 0.1
    max_percentile: float = 99.9
    group: str | None = None
    ignored_scopes: tuple[str, ...] = ()
    target_scopes: tuple[str, ...] = ()
    #: JSON path of the entry (for errors about its scopes)
    path: str = ""

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], path: str) -> RangeSettings:
        params = entry.get("params", {}) or {}
        return cls(
            type=entry.get("type", "mixed_min_max"),
            num_init_samples=int(entry.get("num_init_samples", 256)),
            num_init_steps=entry.get("num_init_steps"),
            min_percentile=float(params.get("min_percentile", 0.1)),
            max_percentile=float(params.get("max_percentile", 99.9)),
            group=entry.get("target_quantizer_group"),
            ignored_scopes=_scopes(entry.get("ignored_scopes")),
            target_scopes=_scopes(entry.get("target_scopes")),
            path=path,
        )


@dataclass(frozen=True)
class QuantizationSettings:
    """Everything the quantization algorithm reads from its section."""

    weights: QuantizerSettings
    activations: QuantizerSettings
    ranges: tuple[RangeSettings, ...] = (RangeSettings(),)
    preset: str = "performance"
    quantize_inputs: bool = True
    num_bn_adaptation_samples: int = 2000

    def group(self, name: str) -> QuantizerSettings:
        return self.weights if name == WEIGHTS else self.activations

    @classmethod
    def from_section(cls, raw: Mapping[str, Any], path: str = "$.compression") -> QuantizationSettings:
        """Build from a validated section; raise :class:`ConfigError` listing every inconsistency."""
        preset = raw.get("preset", "performance")
        weight_mode, activation_mode = PRESETS[preset]
        groups = {}
        problems: list[ConfigProblem] = []
        for name, default_mode in ((WEIGHTS, weight_mode), (ACTIVATIONS, activation_mode)):
            section = raw.get(name, {}) or {}
            mode = section.get("mode", default_mode)
            if mode == ASYMMETRIC and "signed" in section:
                problems.append(ConfigProblem(
                    f"{path}.{name}.signed",
                    "'signed' applies to the symmetric mode; an asymmetric grid is placed by its learned range (remove 'signed')",
                ))
            signed = section.get("signed", True if name == WEIGHTS and mode == SYMMETRIC else None)
            groups[name] = QuantizerSettings(
                mode=mode,
                bits=int(section.get("bits", 8)),
                signed=signed,
                per_channel=bool(section.get("per_channel", False)),
                narrow_range=name == WEIGHTS and mode == SYMMETRIC and signed is not False,
                ignored_scopes=_scopes(section.get("ignored_scopes")),
                target_scopes=_scopes(section.get("target_scopes")),
            )
        initializer = raw.get("initializer", {}) or {}
        entries = initializer.get("range", {})
        if isinstance(entries, Sequence) and not isinstance(entries, (str, Mapping)):
            ranges = tuple(RangeSettings.from_entry(e, f"{path}.initializer.range[{i}]") for i, e in enumerate(entries))
        else:
            ranges = (RangeSettings.from_entry(entries or {}, f"{path}.initializer.range"),)
        bn = (initializer.get("batchnorm_adaptation") or {}).get("num_bn_adaptation_samples", 2000)
        settings = cls(weights=groups[WEIGHTS], activations=groups[ACTIVATIONS], ranges=ranges, preset=preset,
                       quantize_inputs=bool(raw.get("quantize_inputs", True)), num_bn_adaptation_samples=int(bn))
        problems += settings.problems()
        if problems:
            raise ConfigError(problems)
        return settings

    def problems(self) -> list[ConfigProblem]:
        """Rules relating two keys of one range entry."""
        return [
            ConfigProblem(f"{entry.path}.params", f"min_percentile {entry.min_percentile} must be below max_percentile {entry.max_percentile}")
            for entry in self.ranges
            if entry.min_percentile >= entry.max_percentile and entry.type in ("percentile", "mean_percentile")
        ]


def check_section(raw: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    """The cross-key rules as config problems (``AlgorithmSpec.check``: ``load_config`` reports them).

    Values of the wrong type are left to the schema, which reports them on its own.
    """
    if not isinstance(raw, Mapping):
        return []
    try:
        QuantizationSettings.from_section(raw, path)
    except ConfigError as error:
        return list(error.problems)
    except (TypeError, ValueError, KeyError, AttributeError):
        return []
    return []


def first_range(ranges: Sequence[RangeSettings], selections: Sequence[tuple[Any, Any]], group: str, layers: Sequence[str]) -> RangeSettings:
    """The first ``initializer.range`` entry that applies to a quantizer of ``group`` at ``layers``.

    ``selections`` holds each entry's resolved ``(ignored_scopes, target_scopes)`` (objects supporting ``in``).
    """
    for entry, (ignored, targets) in zip(ranges, selections, strict=True):
        if entry.group not in (None, group):
            continue
        if any(layer in ignored for layer in layers):
            continue
        if targets and not any(layer in targets for layer in layers):
            continue
        return entry
    return RangeSettings()
