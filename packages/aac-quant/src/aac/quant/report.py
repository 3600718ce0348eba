"""The statistics of ``quantization``, the same on every framework (no framework imported)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from aac.core.statistics import AlgorithmStatistics, Table
from aac.quant.precision.inventory import Inventory


@dataclass(frozen=True)
class QuantizerRow:
    """What the statistics show of one quantizer."""

    label: str
    group: str
    mode: str
    bits: int
    signed: bool
    per_channel: bool
    low: np.ndarray
    high: np.ndarray
    initialized: bool
    enabled: bool = True


@dataclass(frozen=True)
class MatmulCoverage:
    """The matrix products of a model (convolutions, linear layers, matmuls, attention): quantized (inputs and
    weights), excluded by the config (scopes, ``quantize_inputs``) or left in float for another reason."""

    quantized: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    float: tuple[str, ...] = ()


def quantization_statistics(
    name: str,
    rows: Iterable[QuantizerRow],
    weight_quantizers: int,
    activation_quantizers: int,
    quantized_layers: int,
    quantizable_layers: int,
    inventory: Inventory | None = None,
    coverage: MatmulCoverage | None = None,
) -> AlgorithmStatistics:
    """Scalars ``weight_quantizers``, ``activation_quantizers``, ``quantized_layers_ratio``, ``initialized``, the
    compression ratios of the bit widths (``bit_complexity_ratio``: all-8-bit over current bit operations;
    ``weight_size_ratio``: weight size over float32) and the matrix-product counts; tables of bit widths, of the
    quantizers and of the matrix products left in float."""
    rows = list(rows)
    bits: dict[tuple[str, int, str], int] = {}
    table = []
    for r in rows:
        table.append(
            (
                r.label,
                r.group,
                r.mode,
                r.bits,
                "yes" if r.signed else "no",
                "yes" if r.per_channel else "no",
                round(float(np.min(r.low)), 6),
                round(float(np.max(r.high)), 6),
                "yes" if r.initialized else "no",
                "yes" if r.enabled else "no",
            )
        )
        key = (r.group, r.bits, r.mode)
        bits[key] = bits.get(key, 0) + 1
    scalars = {
        "weight_quantizers": float(weight_quantizers),
        "activation_quantizers": float(activation_quantizers),
        "quantized_layers_ratio": quantized_layers / quantizable_layers if quantizable_layers else 0.0,
        "initialized": float(all(r.initialized for r in rows)),
        "enabled_ratio": sum(r.enabled for r in rows) / len(rows) if rows else 0.0,
    }
    if inventory is not None and inventory.weights:
        weight_bits = {w.key: r.bits for w, r in zip(inventory.weights, rows, strict=False)}
        activation_bits = [r.bits for r in rows[len(inventory.weights) :]]
        scalars["bit_complexity_ratio"] = inventory.bit_complexity_ratio(weight_bits, activation_bits)
        scalars["weight_size_ratio"] = inventory.model_size_ratio(weight_bits)
    tables = [
        Table(
            "Bit widths of quantization",
            ("group", "bits", "mode", "quantizers"),
            tuple((g, b, m, n) for (g, b, m), n in sorted(bits.items())),
        ),
        Table(
            "Quantizers of quantization",
            ("quantizer", "group", "mode", "bits", "signed", "per channel", "low", "high", "initialized", "enabled"),
            tuple(table),
        ),
    ]
    if coverage is not None:
        scalars["matmuls_quantized"] = float(len(coverage.quantized))
        scalars["matmuls_excluded"] = float(len(coverage.excluded))
        scalars["matmuls_float"] = float(len(coverage.float))
        if coverage.float:
            tables.append(Table("Matrix products left in float by quantization", ("operation",), tuple((op,) for op in coverage.float)))
    return AlgorithmStatistics(name, scalars, tables)
