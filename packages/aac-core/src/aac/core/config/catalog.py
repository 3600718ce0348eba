"""What config loading needs to know about the installed plugins, and where it gets that by default.

:func:`aac.core.config.load_config` validates a config against the algorithms some catalog knows: their
names, section schemas, legacy spellings and cross-key rules, plus the names of the search strategies.
:class:`aac.core.plugins.Registry` is the catalog of the installed plugins, but config loading is a layer
below plugin discovery and does not import it: anything with these attributes will do, so a tool (or a
test) can validate configs against a fixed set of algorithms without discovering a single entry point::

    load_config("pruning.json", catalog=my_catalog)

Without a catalog, ``load_config`` asks the default one, which :mod:`aac.core.plugins` provides (the
installed plugins' registry) when it is imported - and importing anything of ``aac.core`` imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from aac.core.errors import ConfigProblem

__all__ = ["AlgorithmCatalog", "AlgorithmEntry", "default_catalog", "set_default_catalog"]


class AlgorithmEntry(Protocol):
    """What config loading reads of one algorithm; :class:`aac.core.specs.AlgorithmSpec` documents each field."""

    @property
    def name(self) -> str: ...

    @property
    def adaptive(self) -> bool: ...

    @property
    def package(self) -> str: ...

    @property
    def schema(self) -> Mapping[str, Any]: ...

    @property
    def aliases(self) -> Mapping[str, str]: ...

    @property
    def legacy(self) -> Callable[[dict[str, Any], str], Iterable[str]] | None: ...

    @property
    def check(self) -> Callable[[Mapping[str, Any], str], Iterable[ConfigProblem]] | None: ...


class AlgorithmCatalog(Protocol):
    """The algorithms (and search strategies) a config may name."""

    @property
    def algorithms(self) -> Mapping[str, AlgorithmEntry]:
        """Algorithm name -> its entry."""
        ...

    @property
    def search_strategies(self) -> Mapping[str, object]:
        """The names ``accuracy_aware_training.params.search_strategy`` may take (the values are not read)."""
        ...

    def unknown_algorithm_message(self, name: str) -> str:
        """The problem text for a section naming ``name``, which is not in :attr:`algorithms`."""
        ...


_default: Callable[[], AlgorithmCatalog] | None = None


def set_default_catalog(provider: Callable[[], AlgorithmCatalog]) -> None:
    """Make ``provider()`` the catalog of ``load_config`` calls that pass none (called once, by :mod:`aac.core.plugins`)."""
    global _default
    _default = provider


def default_catalog() -> AlgorithmCatalog:
    """The catalog ``load_config`` uses when it is given none."""
    if _default is None:  # only while aac.core itself is being imported
        raise RuntimeError("no default algorithm catalog yet: aac.core.plugins provides it when imported; pass catalog= to load_config")
    return _default()
