"""Which modules an ``ignored_scopes`` / ``target_scopes`` entry means.

Users write module names in three ways, and every torch algorithm accepts all of them:

* a plain module path, as in ``named_modules()``: ``"layer1.0.conv1"``;
* an NNCF scope: ``"ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]"`` (a trailing operation
  such as ``"/conv2d_0"`` is accepted and ignored, so NNCF configs keep working);
* a regular expression after ``{re}``, searched in both spellings: ``"{re}layer[34]\\..*conv2"``.

An entry selects the module it names *and everything inside it*, so one entry can switch off a block.
An entry that selects nothing is a config error that lists the closest module names: a typo must
not silently compress (or protect) the wrong layers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aac.core.errors import ConfigError, ConfigProblem

REGEX_PREFIX = "{re}"
_NNCF_OPERATION = re.compile(r"/[A-Za-z_][\w]*_\d+$")  # the "/conv2d_0" suffix of NNCF node names


def _ancestors(path: str) -> Iterable[str]:
    """``"a.b.c"`` -> ``"a.b.c"``, ``"a.b"``, ``"a"``, ``""``."""
    yield path
    while path:
        path = path.rpartition(".")[0]
        yield path


@dataclass(frozen=True)
class ScopeSelection:
    """The modules selected by a list of scope entries (each with everything inside it)."""

    roots: frozenset[str]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and any(a in self.roots for a in _ancestors(path))

    def __bool__(self) -> bool:
        return bool(self.roots)


class ScopeIndex:
    """Every module path of a model next to its NNCF scope, for matching scope entries."""

    def __init__(self, named_classes: Iterable[tuple[str, str]]) -> None:
        """:param named_classes: ``(module path, class name)`` pairs, the root (``""``) first."""
        pairs = list(named_classes)
        class_of = dict(pairs)
        self.paths: tuple[str, ...] = tuple(path for path, _ in pairs)
        self._nncf: dict[str, str] = {}
        for path in self.paths:
            parts = path.split(".") if path else []
            segments = [class_of[""]] + [
                f"{class_of['.'.join(parts[: i + 1])]}[{part}]" for i, part in enumerate(parts)
            ]
            self._nncf[path] = "/".join(segments)
        self._by_nncf = {scope: path for path, scope in self._nncf.items()}

    @classmethod
    def from_module(cls, model: Any) -> ScopeIndex:
        return cls((path, type(module).__name__) for path, module in model.named_modules())

    def nncf_scope(self, path: str) -> str:
        return self._nncf[path]

    def match(self, entry: str) -> list[str]:
        """Module paths that ``entry`` names directly (their submodules are implied)."""
        if entry.startswith(REGEX_PREFIX):
            pattern = re.compile(entry[len(REGEX_PREFIX):])
            return [p for p in self.paths if pattern.search(p) or pattern.search(self._nncf[p])]
        name = entry.rstrip("/")
        if name in self._nncf:
            return [name]
        for candidate in (name, _NNCF_OPERATION.sub("", name)):
            if candidate in self._by_nncf:
                return [self._by_nncf[candidate]]
        return []

    def select(
        self, entries: Sequence[str], *, key: str, where: Callable[[str], str] = lambda entry: "$"
    ) -> ScopeSelection:
        """Resolve config entries; raise :class:`ConfigError` naming each entry that matches nothing.

        :param key: ``"ignored_scopes"`` or ``"target_scopes"`` (for messages).
        :param where: JSON path of the config object whose ``key`` lists a given entry (the global
            lists and an algorithm's own are merged before they get here).
        """
        roots: set[str] = set()
        problems: list[ConfigProblem] = []
        for entry in entries:
            try:
                matched = self.match(entry)
            except re.error as exc:
                problems.append(ConfigProblem(f"{where(entry)}.{key}", f"'{entry}' is not a valid regular expression: {exc}"))
                continue
            if not matched:
                problems.append(ConfigProblem(f"{where(entry)}.{key}", f"'{entry}' matches no module of the model{self._suggest(entry)}"))
            roots.update(matched)
        if problems:
            raise ConfigError(problems)
        return ScopeSelection(frozenset(roots))

    def _suggest(self, entry: str) -> str:
        text = entry[len(REGEX_PREFIX):] if entry.startswith(REGEX_PREFIX) else entry
        candidates = [p for p in self.paths if p] + [self._nncf[p] for p in self.paths]
        close = difflib.get_close_matches(text, candidates, n=4, cutoff=0.5)
        if close:
            return "; closest module names: " + ", ".join(f"'{c}'" for c in close)
        examples = ", ".join(f"'{p}'" for p in self.paths[1:4])
        return f"; module names look like {examples} or '{self._nncf[self.paths[-1]]}'"
