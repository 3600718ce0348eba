"""The names torch users give modules in ``ignored_scopes`` / ``target_scopes``.

The matching rules (``{re}`` regexes, "an entry selects everything inside it", errors listing the
closest names) are core's (:mod:`aac.core.scopes`); this module lists a model's names for them:

* a plain module path, as in ``named_modules()``: ``"layer1.0.conv1"`` (``""`` is the model itself);
* its NNCF scope: ``"ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]"`` - a trailing operation
  such as ``"/conv2d_0"`` is accepted and ignored, so NNCF configs keep working - which ``{re}``
  expressions search as well: ``"{re}layer[34]\\..*conv2"``, ``"{re}BatchNorm2d\\[bn1\\]"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aac.core import scopes

SEPARATOR = "."
_NNCF_OPERATION = re.compile(r"/[A-Za-z_][\w]*_\d+$")  # the "/conv2d_0" suffix of NNCF node names


@dataclass(frozen=True)
class ScopeSelection(scopes.ScopeSelection):
    """Selected module paths, each with every module inside it (``ScopeSelection(frozenset({"layer1"}))``)."""

    separator: str = SEPARATOR


class ScopeIndex(scopes.ScopeIndex):
    """Every module path of a model next to its NNCF scope, for matching scope entries."""

    selection_type = ScopeSelection

    def __init__(self, named_classes: Iterable[tuple[str, str]]) -> None:
        """:param named_classes: ``(module path, class name)`` pairs, the root (``""``) first."""
        class_of = dict(named_classes)
        paths = list(class_of)
        super().__init__(paths, separator=SEPARATOR, spellings={path: _nncf_scope(path, class_of) for path in paths}, noun="module")

    @classmethod
    def from_module(cls, model: Any) -> ScopeIndex:
        return cls((path, type(module).__name__) for path, module in model.named_modules())

    def nncf_scope(self, path: str) -> str:
        return self.spellings[path]

    def variants(self, entry: str) -> Iterable[str]:
        """The entry, then the entry without a trailing NNCF operation (``".../Conv2d[conv1]/conv2d_0"``)."""
        name = entry.rstrip("/")
        return (name, _NNCF_OPERATION.sub("", name))


def _nncf_scope(path: str, class_of: dict[str, str]) -> str:
    """``"layer1.0"`` -> ``"ResNet/Sequential[layer1]/BasicBlock[0]"``: the class of each enclosing module and its name."""
    parts = path.split(SEPARATOR) if path else []
    prefixes = (SEPARATOR.join(parts[: i + 1]) for i in range(len(parts)))
    return "/".join([class_of[""], *(f"{class_of[prefix]}[{part}]" for prefix, part in zip(prefixes, parts, strict=True))])
