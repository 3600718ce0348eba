"""Which layers an ``ignored_scopes`` / ``target_scopes`` entry means: the rules every backend shares.

A backend lists its model's layer *paths* (torch ``"layer1.0.conv1"``, Keras ``"block/dense"``) and
the other names users write for them, in a :class:`ScopeIndex`; the rules are the same everywhere:

* an entry names a layer by its path, by another *spelling* of the whole path (torch: the NNCF
  scope) or by an *alias* (Keras: a layer name that is unique in the model); a backend may accept
  variants of an entry too (:meth:`ScopeIndex.variants`: a trailing NNCF operation, the model's name);
* ``{re}`` followed by a regular expression names every layer whose path or spelling it matches
  (``re.search``);
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
    layer without the index that made it; ``separator`` is what joins a path's parts.
    """

    roots: frozenset[str]
    separator: str

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and any(a in self.roots for a in _ancestors(path, self.separator))

    def __bool__(self) -> bool:
        return bool(self.roots)


class ScopeIndex:
    """Every layer path of a model, with the other names users write for them, to resolve scope entries.

    Backends subclass it to list their model's names (``aac.torch.scopes``, ``aac.tf.scopes``) and set
    :attr:`selection_type` to their :class:`ScopeSelection` subclass, which defaults the separator: what
    :meth:`select` returns is then the type their users build by hand.
    """

    #: the class :meth:`select` returns
    selection_type: ClassVar[type[ScopeSelection]] = ScopeSelection

    def __init__(self, paths: Iterable[str], *, separator: str, spellings: Mapping[str, str] | None = None,
                 aliases: Mapping[str, str] | None = None, noun: str = "layer") -> None:
        """Index ``paths`` and the other names of them.

        :param paths: every layer path, outer layers first (``""`` is the model itself, for a backend that names it).
        :param separator: what joins the parts of a path (``"."`` in torch, ``"/"`` in Keras).
        :param spellings: path -> another complete name of it; regular expressions search these too.
        :param aliases: short name -> path; matched only exactly (regexes search full names, so
            ``{re}^dense$`` does not pick a nested ``head/dense`` through its alias ``dense``).
        :param noun: what a path names, for messages (``"module"``, ``"layer"``).
        """
        self.paths: tuple[str, ...] = tuple(dict.fromkeys(paths))
        self.separator = separator
        self.spellings: Mapping[str, str] = dict(spellings or {})
        self.noun = noun
        self._known = frozenset(self.paths)
        self._named = {**{spelling: path for path, spelling in self.spellings.items()}, **dict(aliases or {})}

    def variants(self, entry: str) -> Iterable[str]:
        """Hook: the names to look an entry up by, in order (default: the entry itself)."""
        return (entry,)

    def match(self, entry: str) -> list[str]:
        """Paths that ``entry`` names directly (the layers inside them are implied); ``re.error`` for a bad regex."""
        if entry.startswith(REGEX_PREFIX):
            pattern = re.compile(entry[len(REGEX_PREFIX):])
            return [p for p in self.paths if any(pattern.search(name) for name in self._spelled(p))]
        for name in self.variants(entry):
            if name in self._known:
                return [name]
            if name in self._named:
                return [self._named[name]]
        return []

    def select(self, entries: Sequence[str], *, key: str, where: Callable[[str], str] = lambda entry: "$",
               strict: bool = True) -> ScopeSelection:
        """Resolve config entries; raise :class:`ConfigError` naming each entry that matches nothing.

        :param key: ``"ignored_scopes"`` or ``"target_scopes"`` (for messages).
        :param strict: False (the section's ``validate_scopes: false``) logs unmatched entries as
            warnings instead; an invalid regular expression is an error either way.
        :param where: JSON path of the config object whose ``key`` lists a given entry (the global lists
            and an algorithm's own are merged before they get here; see :func:`listed_in`).
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
                problem = ConfigProblem(f"{where(entry)}.{key}", f"'{entry}' matches no {self.noun} of the model{self._suggest(entry)}")
                if strict:
                    problems.append(problem)
                else:
                    logger.warning("[aac] %s (validate_scopes is false: ignored)", problem)
            roots.update(matched)
        if problems:
            raise ConfigError(problems)
        return self.selection_type(frozenset(roots), self.separator)

    def _spelled(self, path: str) -> tuple[str, ...]:
        return (path, self.spellings[path]) if path in self.spellings else (path,)

    def _suggest(self, entry: str) -> str:
        """The closest names to an entry that matched nothing, else what names look like."""
        named = [p for p in self.paths if p]
        candidates = named + [name for name in self._named if name not in self._known]
        close = difflib.get_close_matches(entry.removeprefix(REGEX_PREFIX), candidates, n=4, cutoff=0.5)
        if close:
            return f"; closest {self.noun} names: " + ", ".join(f"'{c}'" for c in close)
        examples = named[:3] + [self.spellings[p] for p in self.paths[-1:] if p in self.spellings]  # + one other spelling
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
