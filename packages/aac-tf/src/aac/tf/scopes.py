"""Which Keras layers an ``ignored_scopes`` / ``target_scopes`` entry means.

Every layer of a model has a *path*: the names of the layers that contain it, from the model down,
joined by ``/`` (the model's own name left out). In a Sequential or functional model that is just the
layer name (``"conv2d_1"``); a layer of a nested model or of a custom layer is ``"head/dense"``; in a
subclassed model ``"block1/conv2d_3"``. Users write an entry in one of these ways:

* a path: ``"head/dense"``;
* a bare layer name, when it is unique in the model: ``"dense"`` (NNCF's TensorFlow configs used
  layer names);
* a path that starts with the model's name, as Keras variable paths do: ``"my_net/block1/conv2d_3"``;
* a regular expression after ``{re}``, searched in the paths: ``"{re}^block[34]/.*conv"``.

An entry selects the layer it names *and every layer inside it*, so one entry can switch off a block.
An entry that selects nothing is a config error that lists the closest layer paths: a typo must
not silently compress (or protect) the wrong layers.

.. note:: The matching rules (regex prefix, ancestor selection, "did you mean") are framework-neutral
   and duplicate those of :mod:`aac.torch.scopes`; they are meant to move to ``aac.core`` (see the
   package README), leaving each backend only the job of listing its layer paths.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aac.core.errors import ConfigError, ConfigProblem

REGEX_PREFIX = "{re}"
SEPARATOR = "/"


def ancestors(path: str) -> Iterable[str]:
    """``"a/b/c"`` -> ``"a/b/c"``, ``"a/b"``, ``"a"``."""
    while path:
        yield path
        path = path.rpartition(SEPARATOR)[0]


@dataclass(frozen=True)
class ScopeSelection:
    """The layers selected by a list of scope entries (each with everything inside it)."""

    roots: frozenset[str]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and any(a in self.roots for a in ancestors(path))

    def __bool__(self) -> bool:
        return bool(self.roots)


class ScopeIndex:
    """Every layer path of a model, plus the other spellings that name the same layer."""

    def __init__(self, paths: Iterable[str], aliases: Mapping[str, str] | None = None, root_name: str = "") -> None:
        """:param paths: layer paths, outermost first. :param aliases: other spelling -> path."""
        self.paths: tuple[str, ...] = tuple(dict.fromkeys(p for p in paths if p))
        self.root_name = root_name
        self._aliases = dict(aliases or {})

    @classmethod
    def from_model(cls, model: Any) -> ScopeIndex:
        """Index the layers of a ``keras.Model`` (see :func:`aac.tf.models.layer_paths`)."""
        from aac.tf.models import layer_paths

        paths = list(layer_paths(model))
        leaves: dict[str, list[str]] = {}
        for path in paths:
            leaves.setdefault(path.rpartition(SEPARATOR)[2], []).append(path)
        aliases = {name: found[0] for name, found in leaves.items() if len(found) == 1}
        return cls(paths, aliases, root_name=model.name)

    def match(self, entry: str) -> list[str]:
        """Layer paths that ``entry`` names directly (the layers inside them are implied)."""
        if entry.startswith(REGEX_PREFIX):
            pattern = re.compile(entry[len(REGEX_PREFIX):])
            return [p for p in self.paths if pattern.search(p)]
        name = entry.strip(SEPARATOR)
        if name in self.paths:
            return [name]
        if self.root_name and name.startswith(self.root_name + SEPARATOR):
            rest = name[len(self.root_name) + 1:]
            if rest in self.paths:
                return [rest]
        if name in self._aliases:
            return [self._aliases[name]]
        return []

    def select(
        self, entries: Sequence[str], *, key: str, where: Callable[[str], str] = lambda entry: "$"
    ) -> ScopeSelection:
        """Resolve config entries; raise :class:`ConfigError` naming each entry that matches nothing.

        :param key: ``"ignored_scopes"`` or ``"target_scopes"`` (for messages).
        :param where: JSON path of the config object whose ``key`` lists a given entry.
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
                problems.append(ConfigProblem(f"{where(entry)}.{key}", f"'{entry}' matches no layer of the model{self._suggest(entry)}"))
            roots.update(matched)
        if problems:
            raise ConfigError(problems)
        return ScopeSelection(frozenset(roots))

    def _suggest(self, entry: str) -> str:
        text = entry[len(REGEX_PREFIX):] if entry.startswith(REGEX_PREFIX) else entry
        candidates = list(self.paths) + [a for a in self._aliases if a not in self.paths]
        close = difflib.get_close_matches(text, candidates, n=4, cutoff=0.5)
        if close:
            return "; closest layer names: " + ", ".join(f"'{c}'" for c in close)
        if not self.paths:
            return " (the model has no layers)"
        examples = ", ".join(f"'{p}'" for p in self.paths[:3])
        return f"; layer paths look like {examples}"
