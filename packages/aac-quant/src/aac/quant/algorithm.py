"""The quantization controller, minus the framework: scopes per group, range entry and override, where
quantizers go, range initialization, the quantizer listing, the staged schedule, mixed precision,
statistics and the saved state.

:class:`QuantizationAlgorithmBase` owns ``__init__`` and receives a :class:`QuantizationOps`, implemented
once for PyTorch (``aac.quant.torch.algorithm.TorchQuantizationOps``) and once for Keras
(``aac.quant.tf.algorithm.TFQuantizationOps``). The controller decides which layers get which quantizer
with which settings, and which statistics set which range; the ops only answer what differs between the
frameworks: which layers are quantizable and how their tensors are laid out, making and attaching a
quantizer, reading a weight, running batches, what mixed precision measures, strip and export.
``QuantizationAlgorithm`` (torch) and ``TFQuantization`` only bind the ops to a prepared model.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from aac.core.api import CompressionScheduler, CompressionStage, reiterable
from aac.core.config import AlgorithmSection
from aac.core.errors import AacError
from aac.core.framework import Framework, FrameworkAlgorithm
from aac.core.graph import Node
from aac.core.statistics import AlgorithmStatistics
from aac.quant.placement import input_sites
from aac.quant.precision.controller import MixedPrecision
from aac.quant.precision.ids import plain_scope
from aac.quant.ranges import Collection, RangeCollector, collector_for
from aac.quant.report import QuantizerRow, quantization_statistics
from aac.quant.settings import (
    ACTIVATIONS,
    WEIGHTS,
    PrecisionSettings,
    QuantizationSettings,
    QuantizerSettings,
    RangeSettings,
    ScopeOverride,
    first_range,
)
from aac.quant.staged import StagedQuantizationScheduler

if TYPE_CHECKING:
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


class Quantizer(Protocol):
    """What the controller reads and sets on a framework's fake quantizer (placement, ranges, precision)."""

    #: the name of the algorithm that placed it
    owner: str
    #: where it sits, for messages and statistics
    label: str
    #: the range entry a quantizer that never saw ``initialize`` initializes with, from the first batch it sees
    lazy_range: RangeSettings | None
    #: range statistics being gathered (``initialize``): meanwhile the quantizer observes and passes its input through
    collection: Collection | None
    #: per-channel quantizers: the number of channels along ``axis`` (negative: from the end); None: per tensor
    channels: int | None
    axis: int

    @property
    def bits(self) -> int: ...

    def set_bits(self, bits: int) -> None: ...

    @property
    def enabled(self) -> bool: ...

    def set_enabled(self, enabled: bool) -> None: ...

    def mark_initialized(self, value: bool = True) -> None: ...

    def apply_statistics(self, collector: RangeCollector) -> None:
        """Take the range (and, where the settings leave it open, the sign) from collected statistics."""
        ...


class QuantizationOps(Protocol):
    """What quantization needs of a framework, for one prepared model.

    :meth:`bind` binds the ops to their controller: the other methods read its settings and its quantizers.
    Weight quantizers are keyed by a weight key (a layer path, or a parameter read by a functional call).
    """

    @property
    def framework(self) -> Framework:
        """What every algorithm needs of the backend (copy, fold, export, batch-norm adaptation)."""
        ...

    def bind(self, algorithm: QuantizationAlgorithmBase) -> None:
        """Bind the ops to their controller, before it places any quantizer (the other methods read its
        settings and its quantizers)."""
        ...

    def quantizable_kinds(self) -> str:
        """What is quantized, for the error when nothing is selected."""
        ...

    # -- placement (the controller decides, see :meth:`QuantizationAlgorithmBase._place_quantizers`) --------
    def quantizable_layers(self) -> list[str]:
        """Paths of the layers whose weight and first input are quantized when the scopes select them, in model order."""
        ...

    def calls_layer(self, node: Node) -> bool:
        """True if graph node ``node`` is a call of the quantizable layer ``node.layer`` as a layer (its first
        input is what that layer's input quantizer sees), not some other use of its weight."""
        ...

    def input_layout(self, path: str) -> tuple[int, int]:
        """``(channels, axis)`` of the first input of the layer at ``path``: what a per-channel input quantizer covers."""
        ...

    def attach_weight_quantizer(self, path: str, settings: QuantizerSettings) -> Quantizer:
        """A new quantizer of the weight of the layer at ``path`` (per channel along the weight's output channels
        if ``settings`` ask), made that weight's transform; labelled, not yet registered with the controller."""
        ...

    def attach_input_quantizer(self, consumers: Sequence[str], settings: QuantizerSettings, layout: tuple[int, int] | None) -> Quantizer:
        """One new quantizer (per channel along ``layout``, or per tensor when it is None) that every layer of
        ``consumers`` applies to its first input; it is owned by the first of them, so the model's weights and
        checkpoints carry it. Not yet registered with the controller."""
        ...

    def place_functional(self) -> None:
        """Quantizers beyond the layers' weights and inputs, once those are placed (torch: functional matrix
        products); registered with the controller like theirs."""
        ...

    # -- ranges ----------------------------------------------------------------------------------
    def weight_values(self, key: str) -> np.ndarray:
        """What the quantizer of weight ``key`` receives (the stored weight through the transforms before it), as
        float32 NumPy."""
        ...

    def fake_quantize(self, quantizer: Any, values: np.ndarray) -> np.ndarray:
        """``values`` through ``quantizer``'s current grid (NumPy in and out; the caller has switched it on)."""
        ...

    def rereadable(self, data_loader: Any) -> bool:
        """True if ``data_loader`` can be read again when a staged group switches on."""
        ...

    def run_batches(self, data_loader: Any, reading: Mapping[str, Any], done: Callable[[], bool]) -> None:
        """Run batches of ``data_loader`` (``reading``: how the backend reads a batch) through the model for
        inference - no gradients, every layer's train/eval mode as it was afterwards - until ``done()`` holds
        after a batch or the data ends. The quantizers observe what they see (range initialization)."""
        ...

    # -- what mixed precision measures ------------------------------------------------------------
    def weight_layer(self, key: str) -> str:
        """The layer path of a weight key."""
        ...

    def weight_numel(self, key: str) -> int:
        """The size of the weight a key names."""
        ...

    def parameter_count(self) -> int:
        """Weights of the model itself (the quantizers' ranges are not model weights)."""
        ...

    def module_paths(self, scope: str) -> list[str]:
        """The layer paths an NNCF scope (of a ``bitwidth_per_scope`` entry) names."""
        ...

    def hessian_traces(
        self, keys: list[str], data_loader: Any, criterion: Any, criterion_fn: Any, precision: PrecisionSettings, reading: Mapping[str, Any]
    ) -> dict[str, float]:
        """Average Hessian traces of the loss with respect to the weights of ``keys`` (the controller has switched
        the quantizers off: the float model's curvature)."""
        ...

    def evaluate(self, eval_fn: Callable[..., Any], data: Any) -> Any:
        """``eval_fn(model, data)``, the model left in the modes it was in."""
        ...

    # -- strip, export, statistics ------------------------------------------------------------------
    def strip(self, model: Any) -> Any:
        """Turn every quantizer of ``model`` (a copy) into its fixed QuantizeLinear/DequantizeLinear form."""
        ...

    def prepare_for_export(self, stripped_model: Any) -> None:
        """Last changes to the stripped model before it is written."""
        ...

    def export(self, stripped_model: Any, path: Path, **kwargs: Any) -> None:
        """Write the stripped model (a format that cannot hold it is an error)."""
        ...

    def finish_export(self, path: Path) -> None:
        """Post-process the written file."""
        ...

    def coverage(self) -> Any:
        """The matrix-product coverage (:class:`~aac.quant.report.MatmulCoverage`), or None where not traced."""
        ...


class QuantizationAlgorithmBase(MixedPrecision, FrameworkAlgorithm):
    """Quantization-aware training (not adaptive: bit width has no level to search)."""

    name: ClassVar[str] = "quantization"
    adaptive: ClassVar[bool] = False

    def __init__(self, ops: QuantizationOps, section: AlgorithmSection) -> None:
        super().__init__(ops.framework, section)
        self.ops = ops
        self._init_scopes()
        self.weight_quantizers: dict[str, Any] = {}
        self.activation_sites: list[ActivationSite] = []
        #: id of a quantizer -> the range entry (``initializer.range``) it initializes with
        self._range_of: dict[int, RangeSettings] = {}
        #: what initialize() was given, for ranges initialized again when a staged group switches on
        self._range_data: tuple[Any, Mapping[str, Any]] | None = None
        ops.bind(self)
        self._place_quantizers()
        if not self.weight_quantizers and not self.activation_sites:
            raise QuantizationError(
                f"quantization ({section.path}) found nothing to quantize: it quantizes {ops.quantizable_kinds()}; "
                "check ignored_scopes / target_scopes"
            )
        self._apply_manual_precision()
        self._initialize_weight_ranges()
        self._scheduler = self._make_scheduler()

    # -- placement ----------------------------------------------------------------------------------
    def _place_quantizers(self) -> None:
        """A quantizer on the weight and on the first input of every selected quantizable layer, then the ops' own."""
        layers = self.ops.quantizable_layers()
        for path in layers:
            if self._group_selects(WEIGHTS, path):
                settings, entry = self.quantizer_settings(WEIGHTS, [path])
                self.add_weight_quantizer(path, self.ops.attach_weight_quantizer(path, settings), entry)
        self._place_input_quantizers(set(layers))
        self.ops.place_functional()

    def _place_input_quantizers(self, quantizable: set[str]) -> None:
        """One quantizer per tensor that selected layers read (:func:`aac.quant.placement.input_sites`); overrides
        naming a consumer or a producer of the tensor apply."""
        graph = self.prepared.graph

        def quantized(node: Node) -> bool:
            return node.layer in quantizable and self.ops.calls_layer(node) and self._group_selects(ACTIVATIONS, node.layer)

        for site in input_sites(graph, quantized, self.settings.quantize_inputs):
            consumers = list(site.consumers)
            producers = [layer for layer in (graph.node(t).layer for t in site.tensors) if layer]
            settings, entry = self.quantizer_settings(ACTIVATIONS, [*consumers, *producers])
            layout = None
            if settings.per_channel:
                layouts = {c: self.ops.input_layout(c) for c in consumers}
                layout = layouts[consumers[0]]
                if any(other != layout for other in layouts.values()):
                    raise QuantizationError(
                        f"activations.per_channel: layers {consumers} read the same tensor but expect different channel layouts "
                        f"({', '.join(f'{c}: {n} channels on axis {a}' for c, (n, a) in layouts.items())}); quantize activations "
                        "per tensor, or exclude some of them with activations.ignored_scopes"
                    )
            quantizer = self.ops.attach_input_quantizer(consumers, settings, layout)
            quantizer.label = f"input of {', '.join(consumers)}"
            quantizer.lazy_range = entry  # a model used before initialize() sets the range from its first batch
            feeds = [c for c in consumers if c in self.weight_quantizers]
            self.add_activation_site(ActivationSite(consumers[0], quantizer, consumers, list(site.tensors), feeds), entry)

    def add_weight_quantizer(self, key: str, quantizer: Any, entry: RangeSettings) -> None:
        """Register the quantizer of weight ``key`` and the range entry it initializes with."""
        self.weight_quantizers[key] = quantizer
        self._range_of[id(quantizer)] = entry

    def add_activation_site(self, site: ActivationSite, entry: RangeSettings) -> None:
        """Register an activation quantizer and the range entry it initializes with."""
        self.activation_sites.append(site)
        self._range_of[id(site.quantizer)] = entry

    def range_of(self, quantizer: Any) -> RangeSettings:
        """The range entry ``quantizer`` initializes with."""
        return self._range_of[id(quantizer)]

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
        if WEIGHTS in groups:
            self._initialize_weight_ranges()
        if ACTIVATIONS in groups:
            if self._range_data is None:
                logger.warning(
                    "[aac] quantization: activation quantizers switched on, but initialize() was given no data that can be "
                    "read again (a list, a DataLoader or a tf.data.Dataset); their ranges stay as they were"
                )
                return
            self._initialize_activation_ranges(*self._range_data)

    # -- range initialization ---------------------------------------------------------------------------
    def _initialize_weight_ranges(self) -> None:
        """Set every weight quantizer's range from the weight it quantizes (through the transforms before it)."""
        for key, quantizer in self.weight_quantizers.items():
            values = self.ops.weight_values(key)
            collector = collector_for(self.range_of(quantizer), None if quantizer.channels is None else quantizer.axis % values.ndim)
            collector.update(values)
            quantizer.apply_statistics(collector)

    def _initialize_activation_ranges(self, data_loader: Any, reading: Mapping[str, Any]) -> None:
        """Activation ranges from statistics over the first batches of ``data_loader``, each site within its range
        entry's budget (``num_init_samples`` or ``num_init_steps``); an entry with a budget of 0 keeps the range."""
        collecting: list[Quantizer] = []
        for site in self.activation_sites:
            quantizer, entry = site.quantizer, self.range_of(site.quantizer)
            if entry.num_init_steps == 0 or (entry.num_init_steps is None and entry.num_init_samples == 0):
                quantizer.mark_initialized()  # initialization switched off: keep the current range
                continue
            quantizer.collection = Collection(  # the quantizer observes and passes its input through until it is taken away
                collector_for(entry, None if quantizer.channels is None else quantizer.axis),
                samples_left=None if entry.num_init_steps is not None else entry.num_init_samples,
                batches_left=entry.num_init_steps,
            )
            collecting.append(quantizer)
        if not collecting:
            return

        def done() -> bool:
            return all(q.collection is None or q.collection.done for q in collecting)

        missing = []
        try:
            self.ops.run_batches(data_loader, reading, done)
        finally:
            for quantizer in collecting:
                collection, quantizer.collection = quantizer.collection, None
                if collection is None or collection.collector.batches == 0:
                    missing.append(quantizer.label)
                else:
                    quantizer.apply_statistics(collection.collector)
        if missing:
            logger.warning("[aac] quantization: no data reached %s during range initialization; their ranges are unchanged", missing)

    # -- initialization ---------------------------------------------------------------------------
    def initialize(
        self,
        data_loader: Any,
        *,
        input_fn: Any = None,
        batch_size: int | None = None,
        criterion: Any = None,
        criterion_fn: Any = None,
        eval_fn: Callable[..., Any] | None = None,
        eval_loader: Any = None,
        dump_dir: Any = None,
    ) -> None:
        """Range initialization from ``data_loader``, mixed precision (``hawq``/``autoq``), then batch-norm adaptation.

        :param data_loader: PyTorch: an iterable of batches; a batch is a tensor, a tuple/list whose first
            element is the input (itself a tensor, a tuple of positional inputs or a dict of keyword
            inputs), or a dict of keyword inputs. Keras: a ``tf.data.Dataset`` or any iterable of batches
            (a batch is the input or a tuple whose first element is the input), or an array / ``(x, y)``
            arrays, cut into ``batch_size`` batches.
        :param input_fn: PyTorch: maps a batch to ``(args, kwargs)`` for the model, for other batch layouts.
        :param batch_size: Keras: the batch size arrays are cut into (default 32).
        :param criterion: ``hawq``: the loss - PyTorch ``criterion(outputs, targets)``, Keras ``criterion(targets,
            outputs)`` - with the targets the second element of a batch.
        :param criterion_fn: ``hawq``: ``criterion_fn(outputs, targets, criterion) -> loss`` for other layouts (NNCF's signature).
        :param eval_fn: ``autoq``: ``eval_fn(model, eval_loader) -> metric``, higher is better (NNCF's ``autoq_eval_fn``).
        :param eval_loader: ``autoq``: the data ``eval_fn`` gets (default ``data_loader``).
        :param dump_dir: where ``dump_init_precision_data`` writes (default ``./precision_init``).
        """
        reading = self.framework.batch_reading(input_fn=input_fn, batch_size=batch_size)
        self._initialize_weight_ranges()
        self.remember_adaptation_data(data_loader, self.section.batchnorm_adaptation_samples, **reading)
        if data_loader is None:
            return
        self._range_data = (data_loader, reading) if self.ops.rereadable(data_loader) else None
        self._initialize_activation_ranges(data_loader, reading)
        self._choose_precision(
            data_loader,
            criterion=criterion,
            criterion_fn=criterion_fn,
            eval_fn=eval_fn,
            eval_loader=eval_loader,
            dump_dir=dump_dir,
            **reading,
        )
        samples = self.settings.num_bn_adaptation_samples
        if samples > 0:
            if not reiterable(data_loader):
                warnings.warn(
                    f"{self.name}: batch-norm adaptation ({samples} samples) reads data_loader again after range "
                    "initialization, but it is a one-shot iterator that range initialization has used; pass a list, "
                    "a DataLoader or a tf.data.Dataset",
                    stacklevel=2,
                )
            self.framework.adapt_batchnorm(self.model, data_loader, samples, reading, quiet=False)

    # -- strip and export ---------------------------------------------------------------------------
    def _strip(self, model: Any) -> Any:
        return self.ops.strip(model)

    def prepare_for_export(self, stripped_model: Any) -> None:
        self.ops.prepare_for_export(stripped_model)

    def _export(self, stripped_model: Any, path: Path, **kwargs: Any) -> None:
        self.ops.export(stripped_model, path, **kwargs)

    def finish_export(self, path: Path) -> None:
        self.ops.finish_export(path)

    def compression_stage(self) -> CompressionStage:
        scheduler = self._scheduler
        return scheduler.stage() if isinstance(scheduler, StagedQuantizationScheduler) else CompressionStage.FULLY_COMPRESSED

    # -- reporting --------------------------------------------------------------------------------
    def _collect_statistics(self) -> AlgorithmStatistics:
        rows = []
        for group, label, q in self.quantizers():
            low, high = q.current_range()
            rows.append(
                QuantizerRow(label, group, q.mode, q.bits, q.signed, q.channels is not None, low, high, q.is_initialized, q.enabled)
            )
        quantized_layers, quantizable_layers = self._layer_counts()
        return quantization_statistics(
            self.name,
            rows,
            len(self.weight_quantizers),
            len(self.activation_sites),
            quantized_layers,
            quantizable_layers,
            self.inventory(),
            self.ops.coverage(),
        )

    def _layer_counts(self) -> tuple[int, int]:
        """``(quantized layers, quantizable layers)``: a quantizable layer counts once its weight or its input is
        quantized (the layer of a weight read by a functional call counts only if it is quantizable itself)."""
        candidates = set(self.ops.quantizable_layers())
        quantized = {self.ops.weight_layer(k) for k in self.weight_quantizers} | {c for s in self.activation_sites for c in s.consumers}
        return len(quantized & candidates), len(candidates)

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
