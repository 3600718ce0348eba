"""Mixed precision in the quantization controllers, the same on every framework.

``manual`` bit widths are applied when the model is compressed (they need no data). ``hawq`` and
``autoq`` run in ``initialize()``, after range initialization, and need what only the user has: a loss
for the Hessian traces (``criterion``) or a metric for the search (``eval_fn``). The framework part
measures the traces and the metric and fake-quantizes a weight; everything else - the quantization noise,
naming quantizers, the choice, the dump - is here.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aac.core.atomic import atomic_write_bytes
from aac.core.errors import ConfigError, ConfigProblem
from aac.quant.placement import sites_fed_by
from aac.quant.precision.autoq import search_bits
from aac.quant.precision.hawq import PrecisionError, choose_bits
from aac.quant.precision.ids import INPUT, OUTPUT, WEIGHT, QuantizerName, operation_node
from aac.quant.precision.inventory import ActivationEntry, Inventory, WeightEntry, layer_macs
from aac.quant.settings import ACTIVATIONS, WEIGHTS

if TYPE_CHECKING:
    from aac.core.config import AlgorithmSection
    from aac.quant.algorithm import QuantizationOps
    from aac.quant.settings import PrecisionSettings, QuantizationSettings

logger = logging.getLogger("aac.quant")

#: where dump_init_precision_data writes when initialize() gets no dump_dir
DEFAULT_DUMP_DIR = "precision_init"


class MixedPrecision:
    """Mixin of the quantization controllers: ``initializer.precision``.

    The controller (:class:`aac.quant.algorithm.QuantizationAlgorithmBase`) provides ``settings``, ``section``,
    ``prepared`` (with ``graph``), ``weight_quantizers`` (key -> quantizer with ``bits``, ``set_bits`` and
    ``label``), ``activation_sites`` (with ``quantizer``, ``consumers``, ``tensors`` and ``feeds``: the weight
    keys of the layers the site feeds), :meth:`quantizers` and ``ops`` (:class:`aac.quant.algorithm.QuantizationOps`),
    which measures.
    """

    settings: QuantizationSettings
    section: AlgorithmSection
    prepared: Any
    weight_quantizers: dict[str, Any]
    activation_sites: list[Any]
    #: True once bit widths were chosen (or restored): initialize() does not choose them again
    precision_chosen: bool = False

    ops: QuantizationOps

    def quantizers(self) -> Iterator[tuple[str, str, Any]]:
        """``(group, label, quantizer)`` for every quantizer."""
        for quantizer in self.weight_quantizers.values():
            yield WEIGHTS, quantizer.label, quantizer
        for site in self.activation_sites:
            yield ACTIVATIONS, site.quantizer.label, site.quantizer

    # -- what precision sees ------------------------------------------------------------------
    def inventory(self) -> Inventory:
        """The quantizers with their sizes and work (for the ratios, the choice and the statistics)."""
        graph = self.prepared.graph
        weights = tuple(
            WeightEntry(key, q.label, self.ops.weight_numel(key), layer_macs(graph, self.ops.weight_layer(key)))
            for key, q in self.weight_quantizers.items()
        )
        activations = tuple(ActivationEntry(site.quantizer.label, tuple(site.feeds), site.quantizer.bits) for site in self.activation_sites)
        quantized = sum(w.numel for w in weights)
        return Inventory(weights, activations, max(self.ops.parameter_count() - quantized, 0))

    def bit_widths(self) -> dict[str, int]:
        """Label -> bit width of every quantizer."""
        return {q.label: q.bits for _, _, q in self.quantizers()}

    def set_bit_widths(self, bits: Mapping[str, int]) -> None:
        """Set quantizers' bit widths by label (what :meth:`bit_widths` returned; unknown labels are an error)."""
        quantizers = {q.label: q for _, _, q in self.quantizers()}
        unknown = sorted(set(bits) - set(quantizers))
        if unknown:
            raise PrecisionError(f"no quantizer is labelled {unknown[:3]}; the model has {sorted(quantizers)[:3]}...")
        for label, b in bits.items():
            quantizers[label].set_bits(int(b))

    def _apply_weight_bits(self, weight_bits: Mapping[str, int], mode: str = "liberal") -> None:
        """Weights to these bit widths, and each activation quantizer feeding them to the lowest of theirs."""
        for key, b in weight_bits.items():
            self.weight_quantizers[key].set_bits(b)
        for site, b in zip(self.activation_sites, self.inventory().activation_bits(weight_bits, mode), strict=True):
            site.quantizer.set_bits(b)

    # -- manual ----------------------------------------------------------------------------------
    def _apply_manual_precision(self) -> None:
        """``bitwidth_per_scope``: every name resolved (problems reported together), then applied."""
        precision = self.settings.precision
        if precision is None or precision.type != "manual" or not precision.bitwidth_per_scope:
            return
        problems: list[ConfigProblem] = []
        skipped: list[str] = []
        chosen: dict[int, tuple[Any, int]] = {}
        for index, (bits, text) in enumerate(precision.bitwidth_per_scope):
            where = f"{precision.path}.bitwidth_per_scope[{index}]"
            try:
                targets = self._quantizers_named(QuantizerName.parse(text))
            except ValueError as exc:
                problems.append(ConfigProblem(where, str(exc)))
                continue
            if targets is None:
                problems.append(ConfigProblem(where, f"'{text}' names no operation or layer of the model"))
            elif not targets:
                skipped.append(text)
            for quantizer in targets or ():
                previous = chosen.get(id(quantizer), (quantizer, 0))[1]
                chosen[id(quantizer)] = (quantizer, max(previous, bits))  # two NNCF points on one aac quantizer: the finer grid
        if problems:
            if self.section.validate_scopes:
                raise ConfigError(problems)
            for problem in problems:
                logger.warning("[aac] %s (validate_scopes is false: ignored)", problem)
        if skipped:
            logger.warning(
                "[aac] quantization: %d bitwidth_per_scope entries name tensors aac keeps in float (it quantizes the inputs of "
                "Conv/Linear/MatMul, not those of additions or pooling), skipped: %s%s",
                len(skipped),
                ", ".join(skipped[:3]),
                " ..." if len(skipped) > 3 else "",
            )
        for quantizer, bits in chosen.values():
            quantizer.set_bits(bits)
        self.precision_chosen = True

    def _quantizers_named(self, name: QuantizerName) -> list[Any] | None:
        """The quantizers a ``bitwidth_per_scope`` name means: None if it names nothing in the model, [] if it
        names a tensor aac does not quantize."""
        if name.kind == OUTPUT:
            graph = self.prepared.graph
            node = operation_node(graph, name, self.ops.module_paths)
            if node is None:
                return None
            return [self.activation_sites[i].quantizer for i in sites_fed_by(graph, node.name, [s.tensors for s in self.activation_sites])]
        paths = set(self.ops.module_paths(name.scope))
        if not paths:
            return None
        if name.kind == WEIGHT:
            return [q for key, q in self.weight_quantizers.items() if self.ops.weight_layer(key) in paths]
        assert name.kind == INPUT
        return [site.quantizer for site in self.activation_sites if paths & set(site.consumers)]

    # -- hawq and autoq ----------------------------------------------------------------------------
    def _choose_precision(
        self,
        data_loader: Any,
        *,
        criterion: Any = None,
        criterion_fn: Any = None,
        eval_fn: Any = None,
        eval_loader: Any = None,
        dump_dir: str | Path | None = None,
        **how: Any,
    ) -> None:
        """Run ``hawq`` or ``autoq`` (once: a restored or already chosen assignment is kept)."""
        precision = self.settings.precision
        if precision is None or precision.type == "manual" or self.precision_chosen or not self.weight_quantizers:
            return
        inventory = self.inventory()
        if precision.type == "hawq":
            report = self._run_hawq(inventory, precision, data_loader, criterion, criterion_fn, **how)
        else:
            report = self._run_autoq(inventory, precision, eval_fn, data_loader if eval_loader is None else eval_loader)
        self.precision_chosen = True
        if precision.dump_init_precision_data:
            report["bitwidth_per_scope"] = self.bitwidth_per_scope()
            path = Path(dump_dir or DEFAULT_DUMP_DIR) / f"{precision.type}.json"
            atomic_write_bytes(path, json.dumps(report, indent=2).encode())
            logger.info("[aac] quantization: %s precision data written to %s", precision.type, path)

    def _run_hawq(
        self, inventory: Inventory, precision: PrecisionSettings, data_loader: Any, criterion: Any, criterion_fn: Any, **how: Any
    ) -> dict[str, Any]:
        keys = list(self.weight_quantizers)
        if precision.traces_per_layer_path:
            traces = _read_traces(precision.traces_per_layer_path, keys)
        else:
            if criterion is None or data_loader is None:
                raise PrecisionError(
                    "hawq precision needs data and a loss: call initialize(data_loader, criterion=loss_fn) "
                    "(criterion(outputs, targets); criterion_fn=(outputs, targets, criterion) -> loss for other layouts)"
                )
            with self._quantizers_off():  # the float model's curvature
                traces = self.ops.hessian_traces(keys, data_loader, criterion, criterion_fn, precision, how)
        noise = {key: {b: self._weight_noise(key, b) for b in precision.bits} for key in keys}
        choice = choose_bits(inventory, traces, noise, precision.bits, precision.compression_ratio, precision.bitwidth_assignment_mode)
        self._apply_weight_bits(choice.chosen.bits, precision.bitwidth_assignment_mode)
        logger.info(
            "[aac] quantization: hawq chose bit widths with bit-complexity ratio %.3f (at least %g asked): %s",
            choice.chosen.ratio,
            precision.compression_ratio,
            [choice.chosen.bits[k] for k in keys],
        )
        return {
            "type": "hawq",
            "traces": traces,
            "noise": {k: {str(b): v for b, v in n.items()} for k, n in noise.items()},
            "order_by_trace": list(choice.order),
            "chosen": {"bits": dict(choice.chosen.bits), "ratio": choice.chosen.ratio, "metric": choice.chosen.metric},
            "candidates": [{"bits": [c.bits[k] for k in keys], "ratio": c.ratio, "metric": c.metric} for c in choice.candidates],
        }

    def _run_autoq(self, inventory: Inventory, precision: PrecisionSettings, eval_fn: Any, eval_loader: Any) -> dict[str, Any]:
        if eval_fn is None:
            raise PrecisionError(
                "autoq precision needs a metric: call initialize(data_loader, eval_fn=fn) with fn(model, eval_loader) -> "
                "a number, higher is better (eval_loader= defaults to data_loader)"
            )
        before = self.bit_widths()
        enabled = {q.label: q.enabled for _, _, q in self.quantizers()}

        def evaluate(weight_bits: Mapping[str, int]) -> float:
            self._apply_weight_bits(weight_bits)
            return self._measure(eval_fn, eval_loader, precision.eval_subset_ratio)

        try:  # measured quantized, also where a staged schedule has not switched the quantizers on yet
            for _, _, quantizer in self.quantizers():
                quantizer.set_enabled(True)
            result = search_bits(inventory, precision.bits, precision.compression_ratio, evaluate, precision.iter_number)
        except BaseException:
            self.set_bit_widths(before)
            raise
        finally:
            for _, label, quantizer in self.quantizers():
                quantizer.set_enabled(enabled[label])
        self._apply_weight_bits(result.bits)
        logger.info(
            "[aac] quantization: autoq chose bit widths with %.4f of the float32 weight size (at most %g asked), metric "
            "%.4f (%.4f at the highest bit widths), %d evaluations",
            result.size_ratio,
            precision.compression_ratio,
            result.metric,
            result.base_metric,
            result.evaluations,
        )
        if result.unmeasured_lowered:
            logger.warning(
                "[aac] quantization: autoq's iter_number did not reach %s; they were lowered by size to fit the budget",
                result.unmeasured_lowered,
            )
        return {
            "type": "autoq",
            "bits": result.bits,
            "size_ratio": result.size_ratio,
            "base_metric": result.base_metric,
            "metric": result.metric,
            "evaluations": result.evaluations,
            "measured": {k: {str(b): v for b, v in m.items()} for k, m in result.measured.items()},
            "unmeasured_lowered": result.unmeasured_lowered,
        }

    @contextlib.contextmanager
    def _quantizers_off(self) -> Iterator[None]:
        """Every quantizer switched off (the float model) for the duration, then back as it was."""
        quantizers = [q for _, _, q in self.quantizers()]
        enabled = [q.enabled for q in quantizers]
        try:
            for quantizer in quantizers:
                quantizer.set_enabled(False)
            yield
        finally:
            for quantizer, on in zip(quantizers, enabled, strict=True):
                quantizer.set_enabled(on)

    def _weight_noise(self, key: str, bits: int) -> float:
        """The squared error of quantizing the weight of ``key`` to ``bits`` bits on its current range (HAWQ's noise),
        also where a staged schedule has not switched the quantizer on yet; the quantizer is left as it was."""
        quantizer = self.weight_quantizers[key]
        values = self.ops.weight_values(key)
        before, enabled = quantizer.bits, quantizer.enabled
        quantizer.set_bits(bits)
        quantizer.set_enabled(True)
        try:
            quantized = self.ops.fake_quantize(quantizer, values)
        finally:
            quantizer.set_bits(before)
            quantizer.set_enabled(enabled)
        return float(np.square((quantized - values).astype(np.float64)).sum())

    def _measure(self, eval_fn: Callable[..., Any], eval_loader: Any, subset_ratio: float) -> float:
        """``eval_fn`` on the first ``subset_ratio`` of ``eval_loader``, as a number."""
        subset = eval_loader
        if subset_ratio < 1.0 and eval_loader is not None:
            if not hasattr(eval_loader, "__len__"):
                raise PrecisionError(
                    "autoq's eval_subset_ratio needs an eval_loader with a length (a list, a DataLoader or a finite dataset)"
                )
            subset = list(itertools.islice(eval_loader, max(1, math.ceil(len(eval_loader) * subset_ratio))))
        value = self.ops.evaluate(eval_fn, subset)
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise PrecisionError(f"autoq's eval_fn must return a number (higher is better), got {type(value).__name__}") from exc

    def bitwidth_per_scope(self) -> list[list[Any]]:
        """The current bit widths as a ``bitwidth_per_scope`` list that reproduces them (``manual`` precision)."""
        entries: list[list[Any]] = [[q.bits, f"{self.ops.weight_layer(key)}|WEIGHT"] for key, q in self.weight_quantizers.items()]
        entries += [[site.quantizer.bits, f"{site.consumers[0]}|INPUT"] for site in self.activation_sites if site.consumers]
        return entries

    # -- state -------------------------------------------------------------------------------------
    def _precision_state(self) -> dict[str, Any]:
        return {"bits": self.bit_widths(), "precision_chosen": self.precision_chosen}

    def _load_precision_state(self, state: Mapping[str, Any]) -> None:
        if "bits" in state:
            self.set_bit_widths(state["bits"])
        self.precision_chosen = bool(state.get("precision_chosen", self.precision_chosen))


def _read_traces(path: str, keys: list[str]) -> dict[str, float]:
    """Average traces from a hawq dump (``{"traces": {key: value}}``) or a plain ``{key: value}`` JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PrecisionError(f"traces_per_layer_path '{path}' cannot be read as JSON: {exc}") from exc
    traces = data.get("traces", data) if isinstance(data, dict) else None
    missing = [k for k in keys if not isinstance(traces, dict) or k not in traces]
    if missing:
        raise PrecisionError(
            f"traces_per_layer_path '{path}' has no trace for {missing[:3]} (it must hold one per quantized weight: "
            "the 'traces' of a hawq dump of this model)"
        )
    return {k: float(traces[k]) for k in keys}
