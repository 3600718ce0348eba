"""The statistics of ``quantization``, the same on every framework (no framework imported)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from aac.core.statistics import AlgorithmStatistics, Table


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


def quantization_statistics(name: str, rows: Iterable[QuantizerRow], weight_quantizers: int, activation_quantizers: int,
                            quantized_layers: int, quantizable_layers: int) -> AlgorithmStatistics:
    """Scalars ``weight_quantizers``, ``activation_quantizers``, ``quantized_layers_ratio``, ``initialized``;
    a table of bit widths and one of the quantizers."""
    rows = list(rows)
    bits: dict[tuple[str, int, str], int] = {}
    table = []
    for r in rows:
        table.append((r.label, r.group, r.mode, r.bits, "yes" if r.signed else "no", "yes" if r.per_channel else "no",
                      round(float(np.min(r.low)), 6), round(float(np.max(r.high)), 6), "yes" if r.initialized else "no"))
        key = (r.group, r.bits, r.mode)
        bits[key] = bits.get(key, 0) + 1
    scalars = {
        "weight_quantizers": float(weight_quantizers),
        "activation_quantizers": float(activation_quantizers),
        "quantized_layers_ratio": quantized_layers / quantizable_layers if quantizable_layers else 0.0,
        "initialized": float(all(r.initialized for r in rows)),
    }
    tables = [
        Table("Bit widths of quantization", ("group", "bits", "mode", "quantizers"),
              tuple((g, b, m, n) for (g, b, m), n in sorted(bits.items()))),
        Table("Quantizers of quantization", ("quantizer", "group", "mode", "bits", "signed", "per channel", "low", "high", "initialized"),
              tuple(table)),
    ]
    return AlgorithmStatistics(name, scalars, tables)
