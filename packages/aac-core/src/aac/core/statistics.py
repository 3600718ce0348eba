"""Printable, serialisable compression statistics.

Algorithms report scalars (logged to TensorBoard as ``compression/statistics/<algorithm>/<key>``)
and tables (printed as text). Keeping both in one plain structure lets the loops, the CLI and the
benchmarks share one formatter instead of each algorithm printing its own way.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

#: tabulate's format for every table aac prints: plain ASCII, so it survives any log file or terminal
#: encoding, and it pastes into a GitHub issue or a Markdown report as a rendered table
TABLE_FORMAT = "github"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if _is_number(value) and not isinstance(value, numbers.Integral):
        return f"{value:.4g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.4f}"
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """Render rows as a plain-text table under an optional title; columns of numbers are right-aligned.

    Cells are formatted here (``_cell``) and tabulate's own number parsing is off, so a text cell that
    looks like a number (a version, a layer called ``1e3``) is printed as written.
    """
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(header))]
    table = tabulate(
        [[_cell(v) for v in row] for row in rows],
        headers=list(header),
        tablefmt=TABLE_FORMAT,
        colalign=["right" if n else "left" for n in numeric],
        disable_numparse=True,
    )
    return f"{title}\n{table}" if title else table


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
