"""The config's ``input_info``, read once for every backend.

NNCF's ``input_info`` is one object or a list of them (``sample_size``, optional ``type`` and ``filler``);
each backend turns the entries into sample tensors of its own dtypes. Reading the entries and naming a
type the backend does not know is the same for all of them, so it lives here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from aac.core.errors import AacError


@dataclass(frozen=True)
class InputEntry:
    """One model input as the config describes it."""

    shape: tuple[int, ...]
    kind: str = "float"
    filler: str = "zeros"


def input_entries(input_info: Any, known_kinds: Collection[str], error: type[AacError], framework: str) -> list[InputEntry]:
    """The entries of ``input_info`` (one object, a list, or nothing); a ``type`` outside ``known_kinds`` raises ``error``."""
    entries = input_info if isinstance(input_info, list) else [input_info] if input_info else []
    result = []
    for index, entry in enumerate(entries):
        kind = entry.get("type", "float")
        if kind not in known_kinds:
            raise error(f"input_info[{index}].type '{kind}' is not a {framework} dtype aac knows; use one of {sorted(known_kinds)}")
        result.append(InputEntry(tuple(entry["sample_size"]), kind, entry.get("filler", "zeros")))
    return result
