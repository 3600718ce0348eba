"""Printable, serialisable compression statistics.

Algorithms report scalars (logged to TensorBoard as ``compression/statistics/<algorithm>/<key>``)
and tables (printed as text). Keeping both in one plain structure lets the loops, the CLI and the
benchmarks share one formatter instead of each algorithm printing its own way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.4f}"
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """Render rows as a plain-text table with a header rule; numbers are right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in header]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) if rows else False for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "| " + " | ".join(parts) + " |"

    rule = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [title] if title else []
    out += [rule, line(list(header)), rule.replace("-", "=")]
    out += [line(row) for row in cells]
    out.append(rule)
    return "\n".join(out)


@dataclass(frozen=True)
class Table:
    """A titled table of statistics (for example per-layer pruning levels)."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def to_str(self) -> str:
        return format_table(self.header, self.rows, self.title)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "header": list(self.header), "rows": [list(r) for r in self.rows]}


@dataclass
class AlgorithmStatistics:
    """What one algorithm reports: named scalars and any number of tables."""

    algorithm: str
    scalars: dict[str, float] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)

    def to_str(self) -> str:
        parts = [f"Statistics of {self.algorithm}"]
        if self.scalars:
            parts.append(format_table(("quantity", "value"), sorted(self.scalars.items())))
        parts += [t.to_str() for t in self.tables]
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "scalars": dict(self.scalars), "tables": [t.to_dict() for t in self.tables]}


class CompressionStatistics(Mapping[str, AlgorithmStatistics]):
    """Statistics of every algorithm of a (possibly composite) controller, keyed by algorithm name."""

    def __init__(self, entries: Sequence[AlgorithmStatistics] = ()) -> None:
        self._entries = {e.algorithm: e for e in entries}

    def __getitem__(self, name: str) -> AlgorithmStatistics:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def merged(self, other: CompressionStatistics) -> CompressionStatistics:
        return CompressionStatistics([*self.values(), *other.values()])

    def scalars(self) -> dict[str, float]:
        """Flat ``{"<algorithm>/<key>": value}`` view, as logged to TensorBoard."""
        return {f"{a}/{k}": float(v) for a, s in self._entries.items() for k, v in s.scalars.items()}

    def to_str(self) -> str:
        return "\n\n".join(s.to_str() for s in self.values())

    def to_dict(self) -> dict[str, Any]:
        return {name: s.to_dict() for name, s in self._entries.items()}
