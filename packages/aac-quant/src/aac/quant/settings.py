"""A ``quantization`` config section as typed objects with NNCF's defaults.

The JSON Schema has already checked types and ranges when this runs, and core has moved the legacy
``initializer.type`` / ``initializer.num_init_steps`` spellings under ``initializer.range``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


#: NNCF's defaults of ``initializer.precision`` (``nncf/config/schemata/defaults.py``)
DEFAULT_PRECISION_BITS = (2, 4, 8)
HAWQ_COMPRESSION_RATIO, AUTOQ_COMPRESSION_RATIO = 1.5, 0.15
#: which ``initializer.precision`` keys each type reads (``type`` applies to all)
PRECISION_KEYS = {
    "manual": frozenset({"bitwidth_per_scope"}),
    "hawq": frozenset(
        {
            "bits",
            "num_data_points",
            "iter_number",
            "tolerance",
            "compression_ratio",
            "dump_init_precision_data",
            "traces_per_layer_path",
            "bitwidth_assignment_mode",
        }
    ),
    "autoq": frozenset({"bits", "iter_number", "compression_ratio", "eval_subset_ratio", "dump_init_precision_data"}),
}


@dataclass(frozen=True)
class PrecisionSettings:
    """``initializer.precision``: how bit widths are chosen per quantizer.

    :ivar type: ``manual`` (``bitwidth_per_scope``), ``hawq`` (Hessian-trace sensitivity) or ``autoq``
        (a search against the user's metric); NNCF reads a section without ``type`` as ``manual``.
    :ivar compression_ratio: HAWQ: bit complexity of the all-8-bit model over that of the mixed one (at
        least this); AutoQ: size of the quantized weights over their float32 size (at most this).
    :ivar iter_number: HAWQ: most Hutchinson iterations; AutoQ: most evaluations of the metric (None:
        one per quantizer and lower bit width).
    """

    type: str = "manual"
    bits: tuple[int, ...] = DEFAULT_PRECISION_BITS
    bitwidth_per_scope: tuple[tuple[int, str], ...] = ()
    num_data_points: int = 100
    iter_number: int | None = None
    tolerance: float = 1e-4
    compression_ratio: float = HAWQ_COMPRESSION_RATIO
    eval_subset_ratio: float = 1.0
    dump_init_precision_data: bool = False
    traces_per_layer_path: str | None = None
    bitwidth_assignment_mode: str = "liberal"
    path: str = ""

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], path: str) -> PrecisionSettings:
        kind = entry.get("type", "manual")
        default_ratio = AUTOQ_COMPRESSION_RATIO if kind == "autoq" else HAWQ_COMPRESSION_RATIO
        default_iterations = 200 if kind == "hawq" else None
        iterations = entry.get("iter_number", default_iterations)
        return cls(
            type=kind,
            bits=tuple(sorted({int(b) for b in entry.get("bits", DEFAULT_PRECISION_BITS)})),
            bitwidth_per_scope=tuple((int(bits), str(scope)) for bits, scope in entry.get("bitwidth_per_scope", ())),
            num_data_points=int(entry.get("num_data_points", 100)),
            iter_number=None if iterations is None else int(iterations),
            tolerance=float(entry.get("tolerance", 1e-4)),
            compression_ratio=float(entry.get("compression_ratio", default_ratio)),
            eval_subset_ratio=float(entry.get("eval_subset_ratio", 1.0)),
            dump_init_precision_data=bool(entry.get("dump_init_precision_data", False)),
            traces_per_layer_path=entry.get("traces_per_layer_path"),
            bitwidth_assignment_mode=entry.get("bitwidth_assignment_mode", "liberal"),
            path=path,
        )

    @staticmethod
    def problems(entry: Mapping[str, Any], path: str) -> list[ConfigProblem]:
        """Keys that the chosen type does not read: NNCF ignored them silently, aac says so."""
        kind = entry.get("type", "manual")
        if kind not in PRECISION_KEYS:
            return []
        unused = sorted(set(entry) - PRECISION_KEYS[kind] - {"type"})
        users = {key: [t for t, keys in PRECISION_KEYS.items() if key in keys] for key in unused}
        return [
            ConfigProblem(
                f"{path}.{key}",
                f"'{key}' is not read by precision type '{kind}'"
                + (f" (only by {', '.join(repr(t) for t in users[key])})" if users[key] else "")
                + "; remove it or change 'type'",
            )
            for key in unused
        ]


@dataclass(frozen=True)
class StagedSettings:
    """The staged-quantization ``params`` (NNCF's staged scheduler and the LR/WD schedule of its sample).

    :ivar activations_quant_start_epoch: zero-based epoch at which activation quantizers switch on.
    :ivar lr_poly_drop_start_epoch: epoch at which the learning rate starts its polynomial drop (None: never).
    :ivar disable_wd_start_epoch: epoch after which weight decay is 0 (None: never).
    :ivar batch_multiplier: batches whose gradients are accumulated per optimizer step.
    """

    activations_quant_start_epoch: int = 1
    weights_quant_start_epoch: int = 1
    lr_poly_drop_start_epoch: float | None = None
    lr_poly_drop_duration_epochs: float = 30
    disable_wd_start_epoch: float | None = None
    base_lr: float = 1e-3
    base_wd: float = 1e-5
    batch_multiplier: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StagedSettings:
        def number(key: str, default: Any) -> Any:
            value = params.get(key, default)
            return value if value is None else float(value)

        return cls(
            activations_quant_start_epoch=int(params.get("activations_quant_start_epoch", 1)),
            weights_quant_start_epoch=int(params.get("weights_quant_start_epoch", 1)),
            lr_poly_drop_start_epoch=number("lr_poly_drop_start_epoch", None),
            lr_poly_drop_duration_epochs=float(params.get("lr_poly_drop_duration_epochs", 30)),
            disable_wd_start_epoch=number("disable_wd_start_epoch", None),
            base_lr=float(params.get("base_lr", 1e-3)),
            base_wd=float(params.get("base_wd", 1e-5)),
            batch_multiplier=int(params.get("batch_multiplier", 1)),
        )


@dataclass(frozen=True)
class ScopeOverride:
    """One ``scope_overrides.<group>.<scope>`` entry: settings that replace the group's for the quantizers it names.

    :ivar scope: the key - a layer scope or ``{re}`` expression, matched like ``ignored_scopes``.
    :ivar keys: the raw keys of the entry (``mode``, ``bits``, ``signed``, ``per_channel``).
    :ivar ranges: the entry's own ``initializer.range``, if it has one.
    """

    group: str
    scope: str
    keys: Mapping[str, Any]
    ranges: tuple[RangeSettings, ...] | None
    path: str


def _ranges(entries: Any, path: str) -> tuple[RangeSettings, ...]:
    if isinstance(entries, Sequence) and not isinstance(entries, (str, Mapping)):
        return tuple(RangeSettings.from_entry(e, f"{path}[{i}]") for i, e in enumerate(entries))
    return (RangeSettings.from_entry(entries or {}, path),)


def _override(base: Mapping[str, Any], keys: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` group keys with an override's keys on top; a group's ``signed`` does not carry over to an asymmetric override."""
    merged = {**base, **keys}
    if keys.get("mode") == ASYMMETRIC and "signed" not in keys:
        merged.pop("signed", None)
    return merged


def _group_settings(
    name: str, section: Mapping[str, Any], default_mode: str, path: str, problems: list[ConfigProblem]
) -> QuantizerSettings:
    """One group's (or one overridden quantizer's) settings; ``problems`` collects the cross-key ones."""
    mode = section.get("mode", default_mode)
    if mode == ASYMMETRIC and section.get("signed") is not None:
        problems.append(
            ConfigProblem(
                f"{path}.signed",
                "'signed' applies to the symmetric mode; an asymmetric grid is placed by its learned range (remove 'signed')",
            )
        )
    signed = section.get("signed", True if name == WEIGHTS and mode == SYMMETRIC else None)
    return QuantizerSettings(
        mode=mode,
        bits=int(section.get("bits", 8)),
        signed=signed,
        per_channel=bool(section.get("per_channel", False)),
        narrow_range=name == WEIGHTS and mode == SYMMETRIC and signed is not False,
        ignored_scopes=_scopes(section.get("ignored_scopes")),
        target_scopes=_scopes(section.get("target_scopes")),
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
    precision: PrecisionSettings | None = None
    #: None without ``params`` (NNCF runs the staged scheduler only when ``params`` is given and not empty)
    staged: StagedSettings | None = None
    overrides: tuple[ScopeOverride, ...] = ()
    #: the raw ``weights`` / ``activations`` objects and the preset's modes, for applying overrides
    raw_groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    def group(self, name: str) -> QuantizerSettings:
        return self.weights if name == WEIGHTS else self.activations

    def overridden(self, group: str, entries: Sequence[ScopeOverride]) -> QuantizerSettings:
        """The group's settings with the keys of ``entries`` (matching overrides, config order) applied."""
        if not entries:
            return self.group(group)
        merged: dict[str, Any] = dict(self.raw_groups.get(group, {}))
        for entry in entries:
            merged = _override(merged, entry.keys)
        default_mode = PRESETS[self.preset][0 if group == WEIGHTS else 1]
        return _group_settings(group, merged, default_mode, entries[-1].path, [])

    @classmethod
    def from_section(cls, raw: Mapping[str, Any], path: str = "$.compression") -> QuantizationSettings:
        """Build from a validated section; raise :class:`ConfigError` listing every inconsistency."""
        preset = raw.get("preset", "performance")
        modes = dict(zip((WEIGHTS, ACTIVATIONS), PRESETS[preset], strict=True))
        problems: list[ConfigProblem] = []
        raw_groups = {name: dict(raw.get(name, {}) or {}) for name in (WEIGHTS, ACTIVATIONS)}
        groups = {name: _group_settings(name, raw_groups[name], modes[name], f"{path}.{name}", problems) for name in (WEIGHTS, ACTIVATIONS)}
        overrides = []
        for group, entries in (raw.get("scope_overrides") or {}).items():
            for scope, entry in (entries or {}).items():
                where = f"{path}.scope_overrides.{group}[{scope!r}]"
                keys = {k: v for k, v in entry.items() if k != "initializer" and v is not None}
                _group_settings(group, _override(raw_groups[group], keys), modes[group], where, problems)
                initializer = entry.get("initializer") or {}
                ranges = _ranges(initializer["range"], f"{where}.initializer.range") if "range" in initializer else None
                overrides.append(ScopeOverride(group, scope, keys, ranges, where))
        initializer = raw.get("initializer", {}) or {}
        ranges = _ranges(initializer.get("range", {}), f"{path}.initializer.range")
        bn = (initializer.get("batchnorm_adaptation") or {}).get("num_bn_adaptation_samples", 2000)
        precision = initializer.get("precision")
        if precision is not None:
            problems += PrecisionSettings.problems(precision, f"{path}.initializer.precision")
        params = raw.get("params") or {}
        settings = cls(
            weights=groups[WEIGHTS],
            activations=groups[ACTIVATIONS],
            ranges=ranges,
            preset=preset,
            quantize_inputs=bool(raw.get("quantize_inputs", True)),
            num_bn_adaptation_samples=int(bn),
            precision=None if precision is None else PrecisionSettings.from_entry(precision, f"{path}.initializer.precision"),
            staged=StagedSettings.from_params(params) if params else None,
            overrides=tuple(overrides),
            raw_groups=raw_groups,
        )
        problems += settings.problems()
        if problems:
            raise ConfigError(problems)
        return settings

    def problems(self) -> list[ConfigProblem]:
        """Rules relating two keys of one range entry, of the precision section and of the staged params."""
        entries = [*self.ranges, *(r for o in self.overrides for r in (o.ranges or ()))]
        problems = [
            ConfigProblem(
                f"{entry.path}.params", f"min_percentile {entry.min_percentile} must be below max_percentile {entry.max_percentile}"
            )
            for entry in entries
            if entry.min_percentile >= entry.max_percentile and entry.type in ("percentile", "mean_percentile")
        ]
        precision = self.precision
        if precision is not None and precision.type in ("hawq", "autoq") and len(precision.bits) < 2:
            problems.append(
                ConfigProblem(
                    f"{precision.path}.bits", f"{precision.type} chooses between bit widths: list at least two, got {list(precision.bits)}"
                )
            )
        return problems


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
