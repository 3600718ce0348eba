"""Which layers an ``ignored_scopes`` / ``target_scopes`` entry means: the rules every backend shares.

A backend lists its model's layer *paths* (torch ``"layer1.0.conv1"``, Keras ``"block/dense"``) and
the other names users write for them, in a :class:`ScopeIndex`; the rules are the same everywhere:

* an entry names a layer by its path, by another *spelling* of the whole path (torch: the NNCF
  scope, with or without NNCF's wrapper class names) or by an *alias* (Keras: a layer name that is
  unique in the model); a backend may accept variants of an entry too (:meth:`ScopeIndex.variants`:
  an NNCF operation of a layer, the model's name);
* an entry may also name one *operation* of the model's graph that is not a layer of its own (torch:
  NNCF's ``"Inception3/__add___0"``, the first ``+`` in ``Inception3.forward``); it selects that
  operation only (:attr:`ScopeSelection.operations`), never the module it runs in;
* ``{re}`` followed by a regular expression names every layer whose path or spelling it matches
  (``re.search``), and every operation whose name it matches;
* an entry selects the layer it names *and every layer inside it* (:class:`ScopeSelection`), so one
  entry can switch off a block;
* an entry that names nothing is a :class:`~aac.core.errors.ConfigError` listing the closest names: a
  typo must not silently compress (or protect) the wrong layers.

Pure Python, like the rest of core: backends build the index from their model, core knows no framework.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from aac.core.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from aac.core.config import AlgorithmSection
    from aac.core.graph import Node

REGEX_PREFIX = "{re}"

logger = logging.getLogger("aac.scopes")


def _ancestors(path: str, separator: str) -> Iterator[str]:
    """``"a.b.c"`` -> ``"a.b.c"``, ``"a.b"``, ``"a"``, ``""`` (the model itself, where a backend names it ``""``)."""
    yield path
    while path:
        path = path.rpartition(separator)[0]
        yield path


@dataclass(frozen=True)
class ScopeSelection:
    """The layers selected by a list of scope entries: each named layer with every layer inside it.

    ``path in selection`` checks the path and its enclosing paths, so a selection answers for any
    layer without the index that made it; ``separator`` is what joins a path's parts. ``operations``
    are the names (in the model's :class:`~aac.core.graph.Graph`) of the operations entries named on
    their own; :meth:`holds` answers for a graph node, whichever way it was selected.
    """

    roots: frozenset[str]
    separator: str
    operations: frozenset[str] = frozenset()

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and any(a in self.roots for a in _ancestors(path, self.separator))

    def __bool__(self) -> bool:
        return bool(self.roots or self.operations)

    def holds(self, node: Node) -> bool:
        """True if the graph ``node`` is selected: by name, through its layer, or through the module it runs in."""
        return node.name in self.operations or (node.layer if node.layer is not None else node.scope) in self


class ScopeIndex:
    """Every layer path of a model, with the other names users write for them, to resolve scope entries.

    Backends subclass it to list their model's names (``aac.torch.scopes``, ``aac.tf.scopes``) and set
    :attr:`selection_type` to their :class:`ScopeSelection` subclass, which defaults the separator: what
    :meth:`select` returns is then the type their users build by hand.
    """

    #: the class :meth:`select` returns
    selection_type: ClassVar[type[ScopeSelection]] = ScopeSelection

    def __init__(
        self,
        paths: Iterable[str],
        *,
        separator: str,
        spellings: Mapping[str, str | Sequence[str]] | None = None,
        aliases: Mapping[str, str] | None = None,
        operations: Mapping[str, str] | None = None,
        noun: str = "layer",
    ) -> None:
        """Index ``paths`` and the other names of them.

        :param paths: every layer path, outer layers first (``""`` is the model itself, for a backend that names it).
        :param separator: what joins the parts of a path (``"."`` in torch, ``"/"`` in Keras).
        :param spellings: path -> other complete names of it (one or several); regular expressions search these too.
        :param aliases: short name -> path; matched only exactly (regexes search full names, so
            ``{re}^dense$`` does not pick a nested ``head/dense`` through its alias ``dense``).
        :param operations: name users write for an operation that is not a layer of its own -> the
            operation's node name in the model's graph; matched exactly and by regular expressions.
        :param noun: what a path names, for messages (``"module"``, ``"layer"``).
        """
        self.paths: tuple[str, ...] = tuple(dict.fromkeys(paths))
        self.separator = separator
        self.spellings: dict[str, tuple[str, ...]] = {
            path: (names,) if isinstance(names, str) else tuple(names) for path, names in (spellings or {}).items()
        }
        self.operations: Mapping[str, str] = dict(operations or {})
        self.noun = noun
        self._known = frozenset(self.paths)
        self._named = {**{name: path for path, names in self.spellings.items() for name in names}, **dict(aliases or {})}

    def variants(self, entry: str) -> Iterable[str]:
        """Hook: the names to look an entry up by, in order (default: the entry itself)."""
        return (entry,)

    def defers(self, entry: str) -> bool:
        """Hook: True for an entry this index cannot judge, because it names what the index does not list yet.

        :meth:`select` neither selects nor reports such an entry; the index that lists it judges it
        later (torch: an operation scope, before the model is traced). Default: none.
        """
        return False

    def match(self, entry: str) -> list[str]:
        """Paths that ``entry`` names directly (the layers inside them are implied); ``re.error`` for a bad regex."""
        if entry.startswith(REGEX_PREFIX):
            pattern = re.compile(entry[len(REGEX_PREFIX) :])
            return [p for p in self.paths if any(pattern.search(name) for name in self._spelled(p))]
        for name in self.variants(entry):
            if name in self._known:
                return [name]
            if name in self._named:
                return [self._named[name]]
        return []

    def match_operations(self, entry: str) -> list[str]:
        """Graph node names of the operations ``entry`` names (none for an entry that names a layer)."""
        if entry.startswith(REGEX_PREFIX):
            pattern = re.compile(entry[len(REGEX_PREFIX) :])
            return list(dict.fromkeys(node for name, node in self.operations.items() if pattern.search(name)))
        return [self.operations[entry]] if entry in self.operations else []

    def select(
        self, entries: Sequence[str], *, key: str, where: Callable[[str], str] = lambda entry: "$", strict: bool = True
    ) -> ScopeSelection:
        """Resolve config entries; raise :class:`ConfigError` naming each entry that matches nothing.

        :param key: ``"ignored_scopes"`` or ``"target_scopes"`` (for messages).
        :param strict: False (the section's ``validate_scopes: false``) logs unmatched entries as
            warnings instead; an invalid regular expression is an error either way.
        :param where: JSON path of the config object whose ``key`` lists a given entry (the global lists
            and an algorithm's own are merged before they get here; see :func:`listed_in`).
        """
        roots: set[str] = set()
        operations: set[str] = set()
        problems: list[ConfigProblem] = []
        for entry in entries:
            try:
                matched, named_operations = self.match(entry), self.match_operations(entry)
            except re.error as exc:
                problems.append(ConfigProblem(f"{where(entry)}.{key}", f"'{entry}' is not a valid regular expression: {exc}"))
                continue
            if not matched and not named_operations and not self.defers(entry):
                problem = ConfigProblem(f"{where(entry)}.{key}", f"'{entry}' matches no {self.noun} of the model{self._suggest(entry)}")
                if strict:
                    problems.append(problem)
                else:
                    logger.warning("[aac] %s (validate_scopes is false: ignored)", problem)
            roots.update(matched)
            operations.update(named_operations)
        if problems:
            raise ConfigError(problems)
        return self.selection_type(frozenset(roots), self.separator, frozenset(operations))

    @property
    def _nouns(self) -> str:
        return f"{self.noun} or operation" if self.operations else self.noun

    def _spelled(self, path: str) -> tuple[str, ...]:
        return (path, *self.spellings.get(path, ()))

    def _suggest(self, entry: str) -> str:
        """The closest names to an entry that matched nothing, else what names look like."""
        named = [p for p in self.paths if p]
        candidates = named + [name for name in self._named if name not in self._known] + list(self.operations)
        close = difflib.get_close_matches(entry.removeprefix(REGEX_PREFIX), candidates, n=4, cutoff=0.5)
        if close:
            return f"; closest {self._nouns} names: " + ", ".join(f"'{c}'" for c in close)
        examples = named[:3] + [self.spellings[p][0] for p in self.paths[-1:] if p in self.spellings]  # + one other spelling
        if not examples:
            return f" (the model has no {self.noun}s)"
        return f"; {self.noun} names look like " + ", ".join(f"'{e}'" for e in examples)


@dataclass(frozen=True)
class SectionScopes:
    """An algorithm section's ``ignored_scopes`` / ``target_scopes`` resolved against one model."""

    ignored: ScopeSelection
    targets: ScopeSelection

    @classmethod
    def resolve(cls, index: ScopeIndex, section: AlgorithmSection) -> SectionScopes:
        """Resolve both lists (global entries merged in); unmatched entries are errors unless ``validate_scopes`` is false."""

        def select(entries: Sequence[str], key: str) -> ScopeSelection:
            return index.select(entries, key=key, where=listed_in([section], key), strict=section.validate_scopes)

        return cls(select(section.ignored_scopes, "ignored_scopes"), select(section.target_scopes, "target_scopes"))

    def selects(self, path: str) -> bool:
        """True if the section lets its algorithm compress ``path`` (targeted, or no targets given, and not ignored)."""
        return path not in self.ignored and (not self.targets or path in self.targets)


def listed_in(sections: Iterable[AlgorithmSection], key: str) -> Callable[[str], str]:
    """``where`` for :meth:`ScopeIndex.select`: the JSON path of the config list that holds an entry.

    A section's scopes arrive merged with the global ones, so an error about an entry must look up
    which list it came from: the first of ``sections`` whose own ``key`` lists it, else the global ``$``.
    """
    owners = list(sections)

    def where(entry: str) -> str:
        for section in owners:
            own = section.get(key) or []
            if entry in ([own] if isinstance(own, str) else own):
                return section.path
        return "$"

    return where
