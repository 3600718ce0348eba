"""Plugin discovery and the registry built from it.

``get_plugin_manager()`` loads every module of the ``aac`` entry-point group (core's own built-ins
included), one at a time: a plugin that fails to import is reported by name and skipped, and the
rest keep working. ``Registry`` flattens what the hooks returned into look-up tables.

Environment variables:

* ``AAC_DISABLE_PLUGIN_AUTOLOAD=1`` - load no entry points except core's built-ins.
* ``AAC_DISABLED_PLUGINS=name1,name2`` - block the named entry points (core's built-ins cannot be blocked).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from aac.core import hookspecs
from aac.core.errors import (
    MissingBackendError,
    PluginError,
    UnknownAlgorithmError,
    did_you_mean,
)
from aac.core.specs import AlgorithmSpec, BackendSpec, SearchStrategySpec

DISABLE_AUTOLOAD_ENV = "AAC_DISABLE_PLUGIN_AUTOLOAD"
DISABLED_PLUGINS_ENV = "AAC_DISABLED_PLUGINS"
BUILTIN_PLUGIN = "core"

#: where the algorithms NNCF users know live, so a missing one names the package to install
KNOWN_ALGORITHM_PACKAGES = {
    "filter_pruning": "aac-pruning",
    "magnitude_sparsity": "aac-sparsity",
    "rb_sparsity": "aac-sparsity",
    "const_sparsity": "aac-sparsity",
    "quantization": "aac-quant",
}
KNOWN_BACKEND_PACKAGES = {"torch": "aac-torch (for torch.nn.Module)", "keras": "aac-tf (for Keras models)"}


class AacPluginWarning(UserWarning):
    """A plugin could not be loaded; aac carries on without it."""


@dataclass(frozen=True)
class PluginInfo:
    """One loaded (or failed) plugin, as listed by ``aac plugins``."""

    name: str
    module: str
    distribution: str
    version: str
    error: str | None = None


class AacPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which plugins failed to load, and why."""

    def __init__(self) -> None:
        super().__init__(hookspecs.NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    @property
    def failures(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.error is not None]


def _blocked_names() -> set[str]:
    """The names in ``AAC_DISABLED_PLUGINS``; core's built-ins are essential and never blocked."""
    return {n.strip() for n in os.environ.get(DISABLED_PLUGINS_ENV, "").split(",") if n.strip()} - {BUILTIN_PLUGIN}


def _register_checked(pm: AacPluginManager, plugin: Any, name: str | None = None) -> str | None:
    """Register ``plugin`` all or nothing: on any error it is unregistered again, then the error is raised.

    pluggy leaves a plugin half-registered when one of its hooks fails validation, and only
    ``check_pending`` notices an implementation of a hook that does not exist (a misspelt name);
    both must be charged to this plugin alone, not leak into or break the others.
    """
    already = pm.is_registered(plugin)  # then register() refuses it, and the earlier registration must stay
    try:
        registered = pm.register(plugin, name=name)
        pm.check_pending()
    except Exception:
        if not already and pm.is_registered(plugin):
            pm.unregister(plugin)
        raise
    return registered


def get_plugin_manager(*, autoload: bool | None = None, plugins: Iterable[Any] = ()) -> AacPluginManager:
    """Build a fresh plugin manager: core built-ins, then entry points, then ``plugins`` given here.

    :param autoload: load the ``aac`` entry points; default: unless ``AAC_DISABLE_PLUGIN_AUTOLOAD`` is set.
    :param plugins: extra plugin objects (modules or instances with hook implementations), e.g. in tests.
    """
    from aac.core import builtin

    pm = AacPluginManager()
    blocked = _blocked_names()
    for name in blocked:
        pm.set_blocked(name)
    pm.register(builtin, name=BUILTIN_PLUGIN)
    pm.infos[BUILTIN_PLUGIN] = _info(BUILTIN_PLUGIN, builtin.__name__, "aac-core")
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes"}
    if autoload:
        for entry_point in metadata.entry_points(group=hookspecs.NAME):
            if entry_point.name == BUILTIN_PLUGIN or pm.is_blocked(entry_point.name) or pm.has_plugin(entry_point.name):
                continue
            dist = entry_point.dist.name if entry_point.dist else "?"
            try:
                _register_checked(pm, entry_point.load(), name=entry_point.name)
            except Exception as exc:  # a broken plugin must not take the others down
                message = f"{type(exc).__name__}: {exc}"
                pm.infos[entry_point.name] = _info(entry_point.name, entry_point.value, dist, error=message)
                warnings.warn(
                    f"aac plugin '{entry_point.name}' (from {dist}) failed to load and is skipped: {message}. "
                    f"Set {DISABLED_PLUGINS_ENV}={entry_point.name} to silence this.",
                    AacPluginWarning,
                    stacklevel=2,
                )
                continue
            pm.infos[entry_point.name] = _info(entry_point.name, entry_point.value, dist)
    for plugin in plugins:
        label = getattr(plugin, "__name__", type(plugin).__name__)
        try:
            name = _register_checked(pm, plugin)
        except Exception as exc:  # a plugin handed over in code is the caller's bug: say which one
            raise PluginError(f"plugin {label} cannot be registered: {type(exc).__name__}: {exc}") from exc
        if name is not None:
            pm.infos[name] = _info(name, label, "(registered in code)")
    return pm


def _info(name: str, module: str, dist: str, error: str | None = None) -> PluginInfo:
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "-"
    return PluginInfo(name=name, module=module, distribution=dist, version=version, error=error)


def _owners(hook: pluggy.HookCaller, name: str) -> list[str]:
    """The plugins whose implementation of ``hook`` returns a record called ``name`` (for error messages)."""
    return [impl.plugin_name for impl in reversed(hook.get_hookimpls())
            if any(getattr(r, "name", None) == name for r in impl.function() or ())]


def _unique(hook: pluggy.HookCaller, kind: str) -> dict[str, Any]:
    """Flatten the records the registration ``hook`` returns; two different records of one name conflict."""
    table: dict[str, Any] = {}
    for record in (r for result in hook() for r in (result or ())):
        if record.name in table and table[record.name] != record:
            owners = ", ".join(f"'{o}'" for o in _owners(hook, record.name))
            raise PluginError(
                f"plugins {owners} all register the {kind} '{record.name}'; uninstall one of them "
                f"or block it with {DISABLED_PLUGINS_ENV}=<name>"
            )
        table[record.name] = record
    return dict(sorted(table.items()))


class Registry:
    """Everything the installed plugins provide, looked up by name."""

    def __init__(self, pm: AacPluginManager) -> None:
        self.plugin_manager = pm
        self.algorithms: dict[str, AlgorithmSpec] = _unique(pm.hook.aac_algorithms, "algorithm")
        self.backends: dict[str, BackendSpec] = _unique(pm.hook.aac_backends, "backend")
        self.search_strategies: dict[str, SearchStrategySpec] = _unique(pm.hook.aac_search_strategies, "search strategy")

    def algorithm(self, name: str) -> AlgorithmSpec:
        """The spec of algorithm ``name``; the error names the package to install or a close match."""
        try:
            return self.algorithms[name]
        except KeyError:
            raise UnknownAlgorithmError(self.unknown_algorithm_message(name)) from None

    def unknown_algorithm_message(self, name: str) -> str:
        package = KNOWN_ALGORITHM_PACKAGES.get(name)
        if package:
            return f"algorithm '{name}' is provided by {package}, which is not installed: pip install {package}"
        known = sorted(set(self.algorithms) | set(KNOWN_ALGORITHM_PACKAGES))
        return f"unknown algorithm '{name}'{did_you_mean(name, known)}; known algorithms: {', '.join(known)}"

    def backend_for(self, model: Any) -> BackendSpec:
        """The highest-priority backend that claims ``model``."""
        claiming = [b for b in self.backends.values() if b.claims(model)]
        if not claiming:
            hints = "; ".join(f"pip install {p}" for p in KNOWN_BACKEND_PACKAGES.values())
            raise MissingBackendError(
                f"no installed aac backend handles a model of type {type(model).__module__}.{type(model).__qualname__} "
                f"(installed: {', '.join(self.backends) or 'none'}). Install the backend for its framework: {hints}"
            )
        return max(claiming, key=lambda b: b.priority)

    def search_strategy(self, name: str) -> SearchStrategySpec:
        try:
            return self.search_strategies[name]
        except KeyError:
            known = list(self.search_strategies)
            raise UnknownAlgorithmError(
                f"unknown search strategy '{name}'{did_you_mean(name, known)}; installed: {', '.join(known)}"
            ) from None

    def plugin_infos(self) -> Sequence[PluginInfo]:
        return list(self.plugin_manager.infos.values())


@functools.lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of the installed plugins, built on first use (``reset_default_registry`` rebuilds it)."""
    return Registry(get_plugin_manager())


def reset_default_registry() -> None:
    """Forget the cached registry, e.g. after installing a plugin in the running process."""
    default_registry.cache_clear()
