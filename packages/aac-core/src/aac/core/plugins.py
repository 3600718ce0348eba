"""Plugin discovery and the registry built from it.

``get_plugin_manager()`` registers core's built-ins (:mod:`aac.core.builtin`), then loads every module
of the ``aac`` entry-point group, one at a time: a plugin that fails to import is reported by name and skipped, and the
rest keep working. ``Registry`` flattens what the hooks returned into look-up tables, with the same
isolation: a plugin whose registration hook raises (or returns something that is not records) is
disabled, a record whose name an earlier plugin registered is skipped, and a backend whose
``claims(model)`` raises is passed over for that model; each with an :class:`AacPluginWarning`.

"Earlier" is registration order, which is deterministic: core's built-ins, then the entry points
sorted by name, then the plugins passed in code in the order given. Core therefore always keeps its
names.

Environment variables:

* ``AAC_DISABLE_PLUGIN_AUTOLOAD=1`` - load no entry points except core's built-ins.
* ``AAC_DISABLED_PLUGINS=name1,name2`` - block the named entry points or core's reporters (``core-console``,
  ``core-history``, ``core-plot``, ``core-tensorboard``); core's backend and strategies (``core``) cannot be blocked.
"""

from __future__ import annotations

import functools
import os
import reprlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

import pluggy

from aac.core import builtin, hookspecs
from aac.core.config.catalog import set_default_catalog
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
#: the ``distribution`` of a plugin passed to ``get_plugin_manager(plugins=...)``
IN_CODE = "(registered in code)"

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
    """A plugin, or one of its records, could not be used; aac carries on without it."""


@dataclass(frozen=True)
class PluginInfo:
    """One loaded (or failed) plugin, as listed by ``aac plugins``."""

    name: str
    module: str
    distribution: str
    version: str
    error: str | None = None

    @property
    def label(self) -> str:
        """How messages name the plugin: ``'name' (from distribution)``; one passed in code has only an id
        for a name, so its module or class is shown as well."""
        source = f"{self.module}, registered in code" if self.distribution == IN_CODE else f"from {self.distribution}"
        return f"'{self.name}' ({source})"


@dataclass(frozen=True)
class DisabledRecord:
    """A record the registry left out because another plugin registered its name first."""

    kind: str
    name: str
    plugin: str
    reason: str


class AacPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which plugins failed to load or were disabled, and why."""

    def __init__(self) -> None:
        super().__init__(hookspecs.NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    @property
    def failures(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.error is not None]

    def info(self, name: str) -> PluginInfo:
        """What is known about plugin ``name``; a plugin registered straight through ``register()`` has no record yet."""
        return self.infos.get(name) or _info(name, name, "?")

    def disable(self, name: str, reason: str) -> None:
        """Unregister plugin ``name`` after one of its hooks failed, record ``reason`` and warn.

        Unregistering, not just leaving its records out, keeps the plugin's other hooks (a loop observer)
        from running later, the same as a plugin that failed to import.
        """
        self.unregister(name=name)
        self.infos[name] = replace(self.info(name), error=reason)
        _warn(self.infos[name], f"is disabled: {reason}")


def _warn(info: PluginInfo, problem: str) -> None:
    """Warn that plugin ``info`` ``problem``; an installed plugin gets the hint that blocks it."""
    hint = "" if info.distribution == IN_CODE else f" Set {DISABLED_PLUGINS_ENV}={info.name} to silence this."
    warnings.warn(f"aac plugin {info.label} {problem}.{hint}", AacPluginWarning, stacklevel=3)


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
    pm = AacPluginManager()
    blocked = _blocked_names()
    for blocked_name in blocked:
        pm.set_blocked(blocked_name)
    pm.register(builtin, name=BUILTIN_PLUGIN)
    pm.infos[BUILTIN_PLUGIN] = _info(BUILTIN_PLUGIN, builtin.__name__, "aac-core")
    for reporter_name, reporter in builtin.reporter_plugins().items():
        if not pm.is_blocked(reporter_name):
            pm.register(reporter, name=reporter_name)
            pm.infos[reporter_name] = _info(reporter_name, f"{reporter.make.__module__}:{reporter.make.__name__}", "aac-core")
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes"}
    if autoload:
        # sorted by name (stably: of one name, the copy earliest on sys.path wins), because registration
        # order decides which of two plugins keeps a record name, and importlib.metadata's order is the
        # file system's
        for entry_point in sorted(metadata.entry_points(group=hookspecs.NAME), key=lambda ep: ep.name):
            if pm.is_blocked(entry_point.name) or pm.has_plugin(entry_point.name):
                continue
            dist = entry_point.dist.name if entry_point.dist else "?"
            try:
                _register_checked(pm, entry_point.load(), name=entry_point.name)
            except Exception as exc:  # a broken plugin must not take the others down
                message = f"{type(exc).__name__}: {exc}"
                pm.infos[entry_point.name] = _info(entry_point.name, entry_point.value, dist, error=message)
                _warn(pm.infos[entry_point.name], f"failed to load and is skipped: {message}")
                continue
            pm.infos[entry_point.name] = _info(entry_point.name, entry_point.value, dist)
    for plugin in plugins:
        label = getattr(plugin, "__name__", type(plugin).__name__)
        try:
            registered = _register_checked(pm, plugin)
        except Exception as exc:  # a plugin handed over in code is the caller's bug: say which one
            raise PluginError(f"plugin {label} cannot be registered: {type(exc).__name__}: {exc}") from exc
        if registered is not None:
            pm.infos[registered] = _info(registered, label, IN_CODE)
    return pm


def _info(name: str, module: str, dist: str, error: str | None = None) -> PluginInfo:
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "-"
    return PluginInfo(name=name, module=module, distribution=dist, version=version, error=error)


#: the registration hooks the registry calls: hook name -> (what messages call a record, the record type)
_REGISTRATION_HOOKS: dict[str, tuple[str, type]] = {
    "aac_algorithms": ("algorithm", AlgorithmSpec),
    "aac_backends": ("backend", BackendSpec),
    "aac_search_strategies": ("search strategy", SearchStrategySpec),
}


def _records(pm: AacPluginManager, plugin: object, hook: str) -> list[Any]:
    """The records ``plugin`` alone returns from the registration ``hook``; a ``PluginError`` says what went wrong.

    The hook is called through pluggy with every other plugin left out (``subset_hook_caller``), so that
    an exception or a wrong return value is charged to this plugin, while hook-call monitoring and the
    plugin's own wrappers still apply.
    """
    record_type = _REGISTRATION_HOOKS[hook][1]
    others = [p for _, p in pm.list_name_plugin() if p is not None and p is not plugin]
    try:  # a generator may raise only while it is read, so it is read here
        results = [
            list(r) if isinstance(r, Iterable) and not isinstance(r, (str, bytes, Mapping)) else r
            for r in pm.subset_hook_caller(hook, remove_plugins=others)()
        ]
    except Exception as exc:
        raise PluginError(f"{hook}() raised {type(exc).__name__}: {exc}") from exc
    records: list[Any] = []
    for result in results:  # pluggy leaves out a None result
        if not (isinstance(result, list) and all(isinstance(r, record_type) and isinstance(getattr(r, "name", None), str) for r in result)):
            raise PluginError(f"{hook}() must return an iterable of {record_type.__name__} records, not {reprlib.repr(result)}")
        records += result
    return records


class Registry:
    """Everything the installed plugins provide, looked up by name.

    Building it calls the registration hooks one plugin at a time, in registration order. A plugin whose
    hook raises or returns anything but records is disabled (``plugin_manager.disable``); a record whose
    name an earlier plugin registered with a different record is left out and listed in ``disabled``.
    Core's own plugin is exempt: its failure is a bug in aac-core and is raised.
    """

    def __init__(self, pm: AacPluginManager) -> None:
        self.plugin_manager = pm
        #: records left out because an earlier plugin registered their name
        self.disabled: list[DisabledRecord] = []
        #: (kind, name) -> the plugin whose record is used, for messages about it
        self.providers: dict[tuple[str, str], str] = {}
        tables: dict[str, dict[str, Any]] = {hook: {} for hook in _REGISTRATION_HOOKS}
        for plugin_name, plugin in pm.list_name_plugin():
            if plugin is None:  # blocked
                continue
            try:
                contributed = {hook: _records(pm, plugin, hook) for hook in _REGISTRATION_HOOKS}
            except PluginError as exc:
                if plugin_name == BUILTIN_PLUGIN:
                    raise
                pm.disable(plugin_name, str(exc))
                continue
            for hook, records in contributed.items():
                for record in records:
                    self._add(tables[hook], _REGISTRATION_HOOKS[hook][0], record, plugin_name)
        self.algorithms: dict[str, AlgorithmSpec] = dict(sorted(tables["aac_algorithms"].items()))
        self.backends: dict[str, BackendSpec] = dict(sorted(tables["aac_backends"].items()))
        self.search_strategies: dict[str, SearchStrategySpec] = dict(sorted(tables["aac_search_strategies"].items()))

    def _add(self, table: dict[str, Any], kind: str, record: Any, plugin: str) -> None:
        """Enter ``record`` unless another record of its name came first; an equal one is no conflict."""
        first = self.providers.get((kind, record.name))
        if first is None:
            table[record.name] = record
            self.providers[kind, record.name] = plugin
        elif table[record.name] != record:
            self.disabled.append(DisabledRecord(kind, record.name, plugin, f"plugin '{first}' registered it first"))
            _warn(
                self.plugin_manager.info(plugin),
                f"registers the {kind} '{record.name}', which plugin {self.plugin_manager.info(first).label} "
                f"registered first; the later record is skipped",
            )

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

    def loop_observers(self, context: Any) -> list[Any]:
        """The observers every plugin returns from ``aac_loop_observers(context)`` for one run.

        Each plugin is asked on its own: one whose hook raises is skipped for this run with a warning,
        and the run goes on with the others' observers (core's reporters included).
        """
        pm = self.plugin_manager
        plugins = [(name, plugin) for name, plugin in pm.list_name_plugin() if plugin is not None]
        observers: list[Any] = []
        for name, plugin in plugins:
            others = [p for _, p in plugins if p is not plugin]
            try:
                for result in pm.subset_hook_caller("aac_loop_observers", remove_plugins=others)(context=context):
                    observers.extend(result or ())
            except Exception as exc:  # a plugin's reporting must not stop training
                if name == BUILTIN_PLUGIN:
                    raise
                _warn(pm.info(name), f"gives no loop observers for this run: aac_loop_observers() raised {type(exc).__name__}: {exc}")
        return observers

    def backend_for(self, model: Any) -> BackendSpec:
        """The highest-priority backend that claims ``model``.

        A backend whose ``claims`` raises is passed over for this model with a warning: one plugin's bug
        must not make every model unusable.
        """
        model_type = f"{type(model).__module__}.{type(model).__qualname__}"
        claiming: list[BackendSpec] = []
        failed: list[str] = []
        for backend in self.backends.values():
            try:
                if backend.claims(model):
                    claiming.append(backend)
            except Exception as exc:
                failed.append(backend.name)
                plugin = self.plugin_manager.info(self.providers["backend", backend.name])
                warnings.warn(
                    f"aac backend '{backend.name}' of plugin {plugin.label} is skipped for a model of type {model_type}: "
                    f"claims() raised {type(exc).__name__}: {exc}",
                    AacPluginWarning,
                    stacklevel=2,
                )
        if not claiming:
            hints = "; ".join(f"pip install {p}" for p in KNOWN_BACKEND_PACKAGES.values())
            skipped = f"; skipped after claims() raised: {', '.join(failed)}" if failed else ""
            raise MissingBackendError(
                f"no installed aac backend handles a model of type {model_type} "
                f"(installed: {', '.join(self.backends) or 'none'}{skipped}). Install the backend for its framework: {hints}"
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


# config loading sits below plugin discovery and cannot ask for the registry itself; it is told here
set_default_catalog(default_registry)
