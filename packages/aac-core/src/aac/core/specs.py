"""The records plugins hand to aac through the registration hooks.

Factories are given as ``"module:attribute"`` strings (or callables) and imported only when used,
so that listing plugins (``aac plugins``) or validating a config never imports torch or tensorflow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aac.core.errors import ConfigProblem, PluginError

if TYPE_CHECKING:
    from aac.core.api import CompressionAlgorithm
    from aac.core.backend import Backend
    from aac.core.config.sections import AlgorithmSection, Config
    from aac.core.training.search import SearchStrategy


def resolve(target: str | Callable[..., Any], what: str) -> Callable[..., Any]:
    """Import ``"package.module:attribute"`` (or return a callable as is); errors name ``what``."""
    if callable(target):
        return target
    module_name, _, attribute = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else ():
            obj = getattr(obj, part)
    except ImportError as exc:
        raise PluginError(f"{what}: cannot import '{target}': {exc}") from exc
    except AttributeError as exc:
        raise PluginError(f"{what}: '{target}' does not exist: {exc}") from exc
    if not callable(obj):
        raise PluginError(f"{what}: '{target}' is a {type(obj).__name__}, not a class or function")
    return obj  # type: ignore[no-any-return]  # Any narrowed by callable() stays Any for mypy


@dataclass(frozen=True)
class AlgorithmSpec:
    """A compression algorithm a plugin provides.

    :param name: the config's ``"algorithm"`` value, e.g. ``"filter_pruning"``.
    :param adaptive: True if the adaptive loop can search its level (it implements the
        ``compression_rate`` setter); the one-adaptive-algorithm config rule reads this flag.
    :param frameworks: framework name -> factory ``(model, section, config) -> CompressionAlgorithm``.
    :param schema: JSON Schema (Draft 2020-12) of the algorithm's config section; it should carry
        a ``$id`` and may leave ``"algorithm"`` out (core adds the ``const``).
    :param package: the distribution that provides it, named in errors ("pip install aac-pruning").
    :param aliases: legacy dotted key -> current dotted key, both relative to the algorithm's section
        (``{"params.weight_importance": "params.filter_importance", "initializer.type":
        "initializer.range.type"}``); applied before validation, each with a note in ``Config.notes``.
        Core keeps no table of its own: the spellings of a section are its plugin's to know.
    :param legacy: ``(section, path) -> notes``, for what older NNCF versions wrote differently in a section
        other than a key's name (a value, a combination of keys). It gets the loader's private copy of the
        section after ``aliases`` were applied, may change it in place, and returns one note per change,
        each starting with ``path``; runs before validation.
    :param check: ``(section, path) -> problems``: the section's cross-key rules, which a JSON Schema
        cannot express; ``load_config`` reports them with the schema's problems (so ``aac validate`` does).
    """

    name: str
    adaptive: bool
    frameworks: Mapping[str, str | Callable[..., CompressionAlgorithm]]
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    package: str = ""
    description: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)
    legacy: Callable[[dict[str, Any], str], Iterable[str]] | None = None
    check: Callable[[Mapping[str, Any], str], Iterable[ConfigProblem]] | None = None

    def factory(self, framework: str) -> Callable[[Any, AlgorithmSection, Config], CompressionAlgorithm]:
        return resolve(self.frameworks[framework], f"algorithm '{self.name}' ({framework})")


@dataclass(frozen=True)
class BackendSpec:
    """A framework backend a plugin provides.

    :param name: framework name algorithms register factories for (``"torch"``, ``"tf"``).
    :param claims: cheap predicate - does this backend handle ``model``? It must not import the
        framework itself (check ``sys.modules``), so a model of another framework costs nothing.
    :param factory: zero-argument callable returning the :class:`~aac.core.backend.Backend`.
    :param priority: higher wins when several backends claim a model (the generic one is -100).
    """

    name: str
    claims: Callable[[Any], bool]
    factory: str | Callable[[], Backend]
    package: str = ""
    priority: int = 0
    description: str = ""

    def create(self) -> Backend:
        backend: Backend = resolve(self.factory, f"backend '{self.name}'")()
        return backend


@dataclass(frozen=True)
class SearchStrategySpec:
    """A compression-rate search strategy for the adaptive loop.

    :param name: the value of ``accuracy_aware_training.params.search_strategy``.
    :param factory: ``(params: AccuracyAwareParams) -> SearchStrategy``.
    """

    name: str
    factory: str | Callable[..., SearchStrategy]
    description: str = ""

    def create(self, params: Any) -> SearchStrategy:
        strategy: SearchStrategy = resolve(self.factory, f"search strategy '{self.name}'")(params)
        return strategy
