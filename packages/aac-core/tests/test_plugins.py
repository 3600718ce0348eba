"""Plugin discovery, the registry's look-ups, and ``create_compressed_model`` driven through plugins.

Discovery is tested with *real* entry points: the ``dists`` fixture (conftest) writes small
distributions (a ``dist-info`` folder with ``entry_points.txt``) onto ``sys.path``, exactly what
``pip install`` leaves behind, so ``importlib.metadata`` finds them the way it finds an installed aac-pruning.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aac.core import (
    AlgorithmSpec,
    BackendSpec,
    CompositeController,
    CompressionAlgorithm,
    ConfigError,
    GenericBackend,
    MissingBackendError,
    PluginError,
    Registry,
    SearchStrategySpec,
    UnknownAlgorithmError,
    __version__,
    builtin,
    create_compressed_model,
    get_plugin_manager,
    hookimpl,
    load_config,
)
from aac.core.config.accuracy_aware import AccuracyAwareParams
from aac.core.config.catalog import default_catalog
from aac.core.errors import CompressionRateError, UnsupportedFrameworkError
from aac.core.plugins import (
    DISABLE_AUTOLOAD_ENV,
    DISABLED_PLUGINS_ENV,
    AacPluginWarning,
    PluginInfo,
    default_registry,
    reset_default_registry,
)
from aac.core.testing import ToyModel, ToyPlugin, ToyPruning, ToyQuant, build_toy
from aac.core.training.observers import REPORTERS, RunContext

if TYPE_CHECKING:
    from conftest import FakeDistributions


def ours(failures: list[PluginInfo]) -> list[PluginInfo]:
    """The failures of this module's fake distributions (a half-built real plugin is not this test's concern)."""
    return [f for f in failures if f.distribution.startswith("aac-test-")]


@pytest.fixture
def broken_and_working(dists: FakeDistributions) -> FakeDistributions:
    """One distribution whose plugin raises on import, and one that works."""
    dists.add("aac-test-broken", {"broken": "aac_test_broken"}, {"aac_test_broken": "raise RuntimeError('boom: no GPU here')\n"})
    dists.add_working("aac-test-good", "good", "good_algo")
    return dists


# -- discovery -----------------------------------------------------------------------------------


def test_a_plugin_failing_to_import_is_reported_by_name_and_the_rest_work(broken_and_working: FakeDistributions) -> None:
    with pytest.warns(AacPluginWarning) as warned:
        pm = get_plugin_manager()

    messages = [str(w.message) for w in warned if "aac-test-" in str(w.message)]
    assert messages == [
        "aac plugin 'broken' (from aac-test-broken) failed to load and is skipped: RuntimeError: boom: no GPU here. "
        f"Set {DISABLED_PLUGINS_ENV}=broken to silence this."
    ]
    (failure,) = ours(pm.failures)
    assert (failure.name, failure.module, failure.distribution, failure.version) == ("broken", "aac_test_broken", "aac-test-broken", "0.1")
    assert failure.error == "RuntimeError: boom: no GPU here"
    assert not pm.has_plugin("broken")
    registry = Registry(pm)
    assert "good_algo" in registry.algorithms
    assert registry.algorithms["good_algo"].package == "aac-test-good"
    assert "python" in registry.backends and "step" in registry.search_strategies


def test_a_plugin_implementing_an_unknown_hook_is_skipped_alone(dists: FakeDistributions) -> None:
    """A misspelt hook name must not take every other plugin down with a pluggy validation error."""
    dists.add(
        "aac-test-typo",
        {"typo": "aac_test_typo"},
        {
            "aac_test_typo": """
        from aac.core import hookimpl

        @hookimpl
        def aac_algorithm():  # missing "s"
            return []
    """
        },
    )
    dists.add_working("aac-test-good", "good", "good_algo")

    with pytest.warns(AacPluginWarning, match="aac plugin 'typo' .*unknown hook 'aac_algorithm'"):
        pm = get_plugin_manager()

    assert [f.name for f in ours(pm.failures)] == ["typo"]
    assert "good_algo" in Registry(pm).algorithms


def test_a_plugin_failing_validation_is_not_left_half_registered(dists: FakeDistributions) -> None:
    """pluggy before 1.7 (core allows >=1.5) registers hooks one by one: a later invalid hook left the
    earlier ones active, so the 'skipped' plugin's algorithm was still offered."""
    dists.add(
        "aac-test-half",
        {"half": "aac_test_half"},
        {
            "aac_test_half": """
        from aac.core import AlgorithmSpec, hookimpl

        @hookimpl
        def aac_algorithms():
            return [AlgorithmSpec(name="half_algo", adaptive=False, frameworks={})]

        @hookimpl
        def aac_search_strategies(no_such_argument):
            return []
    """
        },
    )

    with pytest.warns(AacPluginWarning, match="aac plugin 'half'"):
        pm = get_plugin_manager()

    assert [f.name for f in ours(pm.failures)] == ["half"]
    assert "half_algo" not in Registry(pm).algorithms


#: an installed plugin whose registration hook raises, so that all of it (its strategy too) must go
RAISING_PLUGIN = """
from aac.core import SearchStrategySpec, hookimpl

@hookimpl
def aac_algorithms():
    raise RuntimeError("licence server unreachable")

@hookimpl
def aac_search_strategies():
    return [SearchStrategySpec(name="never_offered", factory="aac.core.training.search:StepSearch")]
"""
#: an installed backend that claims before core's generic one and raises for every model
FRAGILE_BACKEND = """
from aac.core import BackendSpec, GenericBackend, hookimpl

def claims(model):
    raise AttributeError("'NoneType' object has no attribute 'nn'")

@hookimpl
def aac_backends():
    return [BackendSpec(name="fragile", claims=claims, factory=GenericBackend, priority=100)]
"""
HOOK_WARNING = (
    "aac plugin 'raising' (from aac-test-hooks) is disabled: aac_algorithms() raised RuntimeError: licence server "
    f"unreachable. Set {DISABLED_PLUGINS_ENV}=raising to silence this."
)
CLAIMS_WARNING = (
    "aac backend 'fragile' of plugin 'fragile' (from aac-test-hooks) is skipped for a model of type "
    "aac.core.testing.ToyModel: claims() raised AttributeError: 'NoneType' object has no attribute 'nn'"
)


@pytest.fixture
def broken_hooks(dists: FakeDistributions) -> Iterator[FakeDistributions]:
    """A distribution with a raising hook and a raising ``claims``, next to a working one; the default
    registry (what ``load_config`` and ``create_compressed_model`` use without one) is rebuilt around it."""
    dists.add(
        "aac-test-hooks",
        {"raising": "aac_test_raising", "fragile": "aac_test_fragile"},
        {"aac_test_raising": RAISING_PLUGIN, "aac_test_fragile": FRAGILE_BACKEND},
    )
    dists.add_working("aac-test-good", "good", "good_algo")
    reset_default_registry()
    yield dists
    reset_default_registry()


def test_a_plugin_whose_hook_raises_is_disabled_and_the_rest_work(broken_hooks: FakeDistributions) -> None:
    pm = get_plugin_manager()
    with pytest.warns(AacPluginWarning) as warned:
        registry = Registry(pm)

    assert [str(w.message) for w in warned if "aac-test-" in str(w.message)] == [HOOK_WARNING]
    (failure,) = ours(pm.failures)
    assert (failure.name, failure.distribution, failure.error) == (
        "raising",
        "aac-test-hooks",
        "aac_algorithms() raised RuntimeError: licence server unreachable",
    )
    assert not pm.has_plugin("raising"), "unregistered: none of its hooks runs later"
    assert "never_offered" not in registry.search_strategies, "its other records go with it"
    assert "good_algo" in registry.algorithms and "fragile" in registry.backends and "step" in registry.search_strategies
    assert ours(Registry(pm).plugin_manager.failures) == [failure], "a second registry neither warns again nor forgets"


def test_load_config_and_create_compressed_model_work_beside_broken_hooks(broken_hooks: FakeDistributions) -> None:
    config = {"compression": {"algorithm": "good_algo"}}
    with pytest.warns(AacPluginWarning) as warned:
        loaded = load_config(config)
        controller, model = create_compressed_model(ToyModel(), loaded)

    assert isinstance(controller, ToyQuant) and isinstance(model, ToyModel)
    assert [str(w.message) for w in warned if "aac-test-" in str(w.message)] == [HOOK_WARNING, CLAIMS_WARNING]


class Garbage:
    """A plugin whose ``aac_algorithms`` returns ``value``, and which offers a strategy that must go with it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    @hookimpl
    def aac_algorithms(self) -> Any:
        return self.value

    @hookimpl
    def aac_search_strategies(self) -> Iterable[SearchStrategySpec]:
        return [SearchStrategySpec(name="garbage_strategy", factory="aac.core.training.search:StepSearch")]


def _half_read() -> Iterator[AlgorithmSpec]:
    yield AlgorithmSpec(name="half_read", adaptive=False, frameworks={})
    raise OSError("schema file missing")


GOOD = AlgorithmSpec(name="good", adaptive=False, frameworks={})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(GOOD, "must return an iterable of AlgorithmSpec records, not AlgorithmSpec...", id="one-record"),
        pytest.param(42, "must return an iterable of AlgorithmSpec records, not 42", id="int"),
        pytest.param("good", "must return an iterable of AlgorithmSpec records, not 'good'", id="str"),
        pytest.param({"good": GOOD}, "must return an iterable of AlgorithmSpec records, not {'good': Algo", id="mapping"),
        pytest.param([GOOD, "bad"], "must return an iterable of AlgorithmSpec records, not [AlgorithmSpec", id="a-stray-item"),
        pytest.param(
            [SearchStrategySpec(name="step", factory="x:y")],
            "must return an iterable of AlgorithmSpec records, not [Search",
            id="wrong-record-type",
        ),
        pytest.param(
            [AlgorithmSpec(name=None, adaptive=False, frameworks={})],
            "must return an iterable of AlgorithmSpec records",  # type: ignore[arg-type]
            id="name-not-str",
        ),
        pytest.param(_half_read(), "raised OSError: schema file missing", id="generator-raising"),
    ],
)
def test_a_hook_returning_garbage_disables_its_plugin(value: Any, problem: str) -> None:
    garbage = Garbage(value)
    pm = get_plugin_manager(autoload=False, plugins=[ToyPlugin(), garbage])
    name = pm.get_name(garbage)

    with pytest.warns(AacPluginWarning) as warned:
        registry = Registry(pm)

    (message,) = [str(w.message) for w in warned]
    assert message.startswith(f"aac plugin '{name}' (Garbage, registered in code) is disabled: aac_algorithms() {problem}")
    assert DISABLED_PLUGINS_ENV not in message, "a plugin passed in code cannot be blocked by name"
    assert [f.name for f in pm.failures] == [name] and not pm.has_plugin(name)
    assert "garbage_strategy" not in registry.search_strategies and "good" not in registry.algorithms
    assert "toy_pruning" in registry.algorithms


def test_a_hook_returning_none_registers_nothing() -> None:
    registry = Registry(get_plugin_manager(autoload=False, plugins=[Garbage(None)]))
    assert registry.algorithms == {} and "garbage_strategy" in registry.search_strategies


def test_a_failing_builtin_hook_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """Core's own plugin is essential: a failure there is aac-core's bug and must not hide as a warning."""

    def broken() -> Iterable[BackendSpec]:
        raise KeyError("python")

    monkeypatch.setattr(builtin, "aac_backends", hookimpl(broken))
    with pytest.raises(PluginError, match=r"^aac_backends\(\) raised KeyError: 'python'$"):
        Registry(get_plugin_manager(autoload=False))


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_autoload_can_be_disabled_by_environment(
    broken_and_working: FakeDistributions, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, value)
    pm = get_plugin_manager()  # no warning: the broken plugin is not even imported

    assert [info.name for info in pm.infos.values()] == ["core", "core-console", "core-history", "core-plot", "core-tensorboard"]
    assert "aac_test_broken" not in sys.modules
    registry = Registry(pm)
    assert registry.algorithms == {}
    assert "python" in registry.backends, "core's built-ins are always there"


def test_explicit_autoload_wins_over_the_environment(broken_and_working: FakeDistributions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    with pytest.warns(AacPluginWarning):
        pm = get_plugin_manager(autoload=True)
    assert pm.has_plugin("good")


def test_named_plugins_can_be_disabled(broken_and_working: FakeDistributions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLED_PLUGINS_ENV, " broken , core")
    pm = get_plugin_manager()  # no warning: the broken plugin is blocked before import

    assert pm.is_blocked("broken") and ours(pm.failures) == []
    assert pm.has_plugin("good")
    assert pm.has_plugin("core") and not pm.is_blocked("core"), "core's built-ins are essential"
    assert "python" in Registry(pm).backends


@pytest.mark.parametrize("blocked", ["core-console", "core-history", "core-plot", "core-tensorboard"])
def test_each_builtin_reporter_can_be_switched_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, blocked: str) -> None:
    """AAC_DISABLED_PLUGINS removes one of core's reporters from a run and leaves the others reporting."""
    monkeypatch.setenv(DISABLED_PLUGINS_ENV, blocked)
    pm = get_plugin_manager(autoload=False)
    assert pm.is_blocked(blocked) and not pm.has_plugin(blocked)
    context = RunContext(
        tmp_path,
        "early_exit",
        AccuracyAwareParams.from_section({"mode": "early_exit", "params": {"maximal_absolute_accuracy_degradation": 1.0}}),
        90.0,
        None,
        tensorboard_writer=object(),
    )
    kinds = {type(observer).__name__ for observer in Registry(pm).loop_observers(context)}
    expected = {type(make(context)).__name__ for name, make in REPORTERS.items() if name != blocked}
    assert kinds == expected and len(expected) == len(REPORTERS) - 1


def test_builtin_plugin_info(registry: Registry) -> None:
    core = next(i for i in registry.plugin_infos() if i.name == "core")
    assert (core.module, core.distribution, core.version, core.error) == ("aac.core.builtin", "aac-core", __version__, None)


def test_a_broken_plugin_registered_in_code_is_a_plugin_error() -> None:
    class Typo:
        @hookimpl
        def aac_backend(self) -> list[BackendSpec]:
            return []

    with pytest.raises(PluginError, match="plugin Typo cannot be registered: .*unknown hook 'aac_backend'"):
        get_plugin_manager(autoload=False, plugins=[Typo()])


# -- conflicts -----------------------------------------------------------------------------------


def _spec_of(kind: str, name: str, marker: str) -> Any:
    """A record of ``kind`` called ``name``; ``marker`` makes otherwise equal records differ."""
    if kind == "algorithm":
        return AlgorithmSpec(name=name, adaptive=False, frameworks={"python": build_toy}, description=marker)
    if kind == "backend":
        return BackendSpec(name=name, claims=GenericBackend.claims, factory=GenericBackend, description=marker)
    return SearchStrategySpec(name=name, factory="aac.core.training.search:StepSearch", description=marker)


def _plugin(kind: str, record: Any) -> object:
    """An instance implementing only the registration hook for ``kind``."""
    hook = {"algorithm": "aac_algorithms", "backend": "aac_backends", "search strategy": "aac_search_strategies"}[kind]
    return type(f"Provides_{record.description}", (), {hook: hookimpl(lambda self: [record])})()


@pytest.mark.parametrize(("kind", "name"), [("algorithm", "clash"), ("backend", "python"), ("search strategy", "step")])
def test_of_two_plugins_registering_one_name_the_first_keeps_it(kind: str, name: str) -> None:
    """Core's built-ins come first, then plugins in registration order; a later record is skipped, not fatal."""
    first, second = _plugin(kind, _spec_of(kind, name, "first")), _plugin(kind, _spec_of(kind, name, "second"))
    pm = get_plugin_manager(autoload=False, plugins=[first, second])

    with pytest.warns(AacPluginWarning) as warned:
        registry = Registry(pm)

    def table(registry: Registry) -> dict[str, Any]:
        return {"algorithm": registry.algorithms, "backend": registry.backends, "search strategy": registry.search_strategies}[kind]

    if kind == "algorithm":
        winner, owner, losers = _spec_of(kind, name, "first"), f"'{pm.get_name(first)}' (Provides_first, registered in code)", [second]
    else:  # core's own backend and strategy
        winner, owner, losers = table(Registry(get_plugin_manager(autoload=False)))[name], "'core' (from aac-core)", [first, second]
    assert table(registry)[name] == winner
    assert [str(w.message) for w in warned] == [
        f"aac plugin '{pm.get_name(loser)}' ({type(loser).__name__}, registered in code) registers the {kind} '{name}', "
        f"which plugin {owner} registered first; the later record is skipped."
        for loser in losers
    ]
    assert [(d.kind, d.name, d.plugin) for d in registry.disabled] == [(kind, name, pm.get_name(loser)) for loser in losers]
    assert all(pm.has_plugin(pm.get_name(p)) for p in (first, second)), "only the record is skipped, not the plugin"


def test_of_two_installed_plugins_the_first_by_entry_point_name_keeps_a_name(dists: FakeDistributions) -> None:
    """importlib.metadata lists entry points in file-system order; the registry must not depend on it."""
    dists.add_working("aac-test-zulu", "zulu", "clash")
    dists.add_working("aac-test-alpha", "alpha", "clash")
    dists.add_working("aac-test-mike", "mike", "clash")

    with pytest.warns(AacPluginWarning) as warned:
        registry = Registry(get_plugin_manager())

    assert registry.algorithms["clash"].package == "aac-test-alpha"
    assert [str(w.message) for w in warned if "aac-test-" in str(w.message)] == [
        f"aac plugin '{loser}' (from aac-test-{loser}) registers the algorithm 'clash', which plugin 'alpha' (from aac-test-alpha) "
        f"registered first; the later record is skipped. Set {DISABLED_PLUGINS_ENV}={loser} to silence this."
        for loser in ("mike", "zulu")
    ]
    assert [(d.name, d.plugin, d.reason) for d in registry.disabled] == [
        ("clash", "mike", "plugin 'alpha' registered it first"),
        ("clash", "zulu", "plugin 'alpha' registered it first"),
    ]


def test_the_same_record_from_two_plugins_is_no_conflict() -> None:
    record = _spec_of("algorithm", "shared", "same")
    registry = Registry(get_plugin_manager(autoload=False, plugins=[_plugin("algorithm", record), _plugin("algorithm", record)]))
    assert registry.algorithms == {"shared": record}


def test_records_are_sorted_by_name() -> None:
    plugins = [_plugin("algorithm", _spec_of("algorithm", n, n)) for n in ("zeta", "alpha", "mid")]
    assert list(Registry(get_plugin_manager(autoload=False, plugins=plugins)).algorithms) == ["alpha", "mid", "zeta"]


class SchemaMistakes:
    """Two copy-pasted schemas sharing one ``$id``, and one schema that is not a schema."""

    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        def schema(key: str) -> dict[str, Any]:
            return {
                "$id": "urn:copied",
                "type": "object",
                "properties": {"params": {"type": "object", "properties": {key: {"type": "integer"}}, "additionalProperties": False}},
            }

        return [
            AlgorithmSpec(name="first", adaptive=False, frameworks={}, schema=schema("a"), package="aac-test-a"),
            AlgorithmSpec(name="second", adaptive=False, frameworks={}, schema=schema("b"), package="aac-test-b"),
            AlgorithmSpec(name="broken", adaptive=False, frameworks={}, schema={"$id": "urn:b", "type": "objekt"}, package="aac-test-c"),
        ]


def test_two_algorithm_schemas_with_one_id_are_a_plugin_error() -> None:
    """Otherwise only one schema is applied and the other algorithm's valid sections fail its rules."""
    registry = Registry(get_plugin_manager(autoload=False, plugins=[SchemaMistakes()]))
    with pytest.raises(
        PluginError, match=r"algorithm 'second' \(aac-test-b\) has the \$id 'urn:copied', already used by algorithm 'first'"
    ):
        load_config({"compression": {"algorithm": "second", "params": {"b": 1}}}, registry=registry)


def test_an_invalid_algorithm_schema_is_a_plugin_error() -> None:
    spec = next(s for s in SchemaMistakes().aac_algorithms() if s.name == "broken")
    registry = Registry(get_plugin_manager(autoload=False, plugins=[_plugin("algorithm", spec)]))
    with pytest.raises(PluginError, match=r"the config schema of algorithm 'broken' \(aac-test-c\) is invalid"):
        load_config({"batch_size": 1}, registry=registry)


# -- look-ups ------------------------------------------------------------------------------------


class Special(ToyModel):
    """A model a high-priority test backend claims for itself."""


class ClaimingBackends:
    @hookimpl
    def aac_backends(self) -> Iterable[BackendSpec]:
        return [
            BackendSpec(name="any_state", claims=GenericBackend.claims, factory=GenericBackend, priority=0),
            BackendSpec(name="special", claims=lambda model: isinstance(model, Special), factory=GenericBackend, priority=10),
        ]


@pytest.mark.parametrize(("model", "backend"), [(Special(), "special"), (ToyModel(), "any_state")])
def test_backend_for_picks_the_highest_priority_claim(model: Any, backend: str) -> None:
    registry = Registry(get_plugin_manager(autoload=False, plugins=[ClaimingBackends()]))
    assert registry.backend_for(model).name == backend


def _refuse(model: Any) -> bool:
    raise ImportError("cannot import name 'nn' from 'torch' (a half-installed torch)")


class FragileBackends:
    @hookimpl
    def aac_backends(self) -> Iterable[BackendSpec]:
        return [BackendSpec(name="fragile", claims=_refuse, factory=GenericBackend, priority=10)]


def test_a_backend_whose_claims_raises_is_skipped_for_that_model() -> None:
    registry = Registry(get_plugin_manager(autoload=False, plugins=[FragileBackends(), ClaimingBackends()]))
    plugin = registry.plugin_manager.get_name(next(p for p in registry.plugin_manager.get_plugins() if isinstance(p, FragileBackends)))

    with pytest.warns(AacPluginWarning) as warned:
        assert registry.backend_for(Special()).name == "special"

    assert [str(w.message) for w in warned] == [
        f"aac backend 'fragile' of plugin '{plugin}' (FragileBackends, registered in code) is skipped for a model of type "
        f"{__name__}.Special: claims() raised ImportError: cannot import name 'nn' from 'torch' (a half-installed torch)"
    ]
    assert registry.disabled == [] and registry.plugin_manager.failures == [], "only for this model: another may work"


def test_a_model_only_a_raising_backend_could_claim_says_so() -> None:
    registry = Registry(get_plugin_manager(autoload=False, plugins=[FragileBackends()]))
    with pytest.warns(AacPluginWarning), pytest.raises(MissingBackendError) as info:
        registry.backend_for([1.0])
    assert "(installed: fragile, python; skipped after claims() raised: fragile)" in str(info.value)


def test_generic_backend_claims_state_dict_objects(registry: Registry) -> None:
    spec = registry.backend_for(ToyModel())
    assert (spec.name, spec.priority, spec.package) == ("python", -100, "aac-core")
    assert isinstance(spec.create(), GenericBackend)


def test_a_model_no_backend_claims_names_the_packages_to_install(registry: Registry) -> None:
    with pytest.raises(MissingBackendError) as info:
        registry.backend_for([1.0, 2.0])
    message = str(info.value)
    assert "no installed aac backend handles a model of type builtins.list (installed: python)" in message
    assert "pip install aac-torch" in message and "pip install aac-tf" in message


def test_unknown_algorithm_error_of_a_known_nncf_name(registry: Registry) -> None:
    with pytest.raises(UnknownAlgorithmError) as info:
        registry.algorithm("filter_pruning")
    assert isinstance(info.value, KeyError), "callers may catch it as a KeyError"
    assert str(info.value) == "algorithm 'filter_pruning' is provided by aac-pruning, which is not installed: pip install aac-pruning"


def test_unknown_algorithm_error_suggests_a_close_match(registry: Registry) -> None:
    with pytest.raises(UnknownAlgorithmError, match=r"unknown algorithm 'toy_qaunt' \(did you mean 'toy_quant'\?\); known algorithms: "):
        registry.algorithm("toy_qaunt")


def test_unknown_search_strategy_error(registry: Registry) -> None:
    with pytest.raises(UnknownAlgorithmError, match=r"^unknown search strategy 'bisect'; installed: frontier, step$"):
        registry.search_strategy("bisect")


# -- create_compressed_model -----------------------------------------------------------------------

PRUNING = {"algorithm": "toy_pruning", "params": {"target": 0.4, "steps": 2}}


def test_single_algorithm(registry: Registry) -> None:
    model = ToyModel()
    controller, compressed = create_compressed_model(model, {"compression": PRUNING}, registry=registry)

    assert isinstance(controller, ToyPruning) and controller.target == 0.4
    assert compressed is model, "the generic backend compresses the object in place"
    controller.scheduler.epoch_step()
    assert model.rate == pytest.approx(0.2), "the schedule moves the real model"


def test_composite_rate_is_the_adaptive_childs(registry: Registry) -> None:
    model = ToyModel()
    controller, _ = create_compressed_model(model, {"compression": [{"algorithm": "toy_quant"}, PRUNING]}, registry=registry)

    assert isinstance(controller, CompositeController)
    assert [type(c) for c in controller.children] == [ToyQuant, ToyPruning]
    assert controller.adaptive_child is controller.children[1]
    controller.compression_rate = 0.3
    assert model.rate == 0.3 and controller.compression_rate == 0.3
    controller.scheduler.epoch_step()
    assert controller.children[0].scheduler.current_epoch == 0, "the fixed-level child's schedule runs too"


def test_without_compression_section_the_model_is_unchanged(registry: Registry) -> None:
    model = ToyModel(skill=0.7)
    controller, compressed = create_compressed_model(model, {"batch_size": 8}, registry=registry)

    assert compressed is model and model.state_dict() == {"skill": 0.7, "rate": 0.0}
    assert controller.name == "no_compression"
    with pytest.raises(CompressionRateError):
        _ = controller.compression_rate


@pytest.mark.parametrize(
    "compression",
    [PRUNING, pytest.param([{**PRUNING, "params": {"target": 0.4, "steps": 4}}, {"algorithm": "toy_quant"}], id="composite")],
    ids=["single", "composite"],
)
def test_compression_state_round_trip(registry: Registry, compression: Any) -> None:
    """A controller restored from ``get_state()`` is where the original was, and goes on the same way."""
    config = {"compression": compression}
    original, original_model = create_compressed_model(ToyModel(), config, registry=registry)
    original.scheduler.epoch_step()
    state = original.get_state()

    restored, model = create_compressed_model(ToyModel(), config, compression_state=state, registry=registry)

    assert restored.get_state() == state
    assert model.rate == original_model.rate > 0
    original.scheduler.epoch_step()
    restored.scheduler.epoch_step()
    assert model.rate == original_model.rate


def test_an_unknown_algorithm_is_a_config_error(registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"\$\.compression\.algorithm: unknown algorithm 'toy'"):
        create_compressed_model(ToyModel(), {"compression": {"algorithm": "toy"}}, registry=registry)


class Lying(CompressionAlgorithm):
    """A fixed-level controller whose plugin claims it is adaptive."""

    name = "liar"


class MisdeclaringPlugin:
    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        return [
            AlgorithmSpec(name="liar", adaptive=True, frameworks={"python": lambda model, section, config: Lying(model)}),
            AlgorithmSpec(name="torch_only", adaptive=False, frameworks={"torch": "not_imported.at:all"}, package="aac-test"),
        ]


def test_adaptive_flag_mismatch_is_a_plugin_error() -> None:
    registry = Registry(get_plugin_manager(autoload=False, plugins=[MisdeclaringPlugin()]))
    with pytest.raises(
        PluginError,
        match=r"algorithm 'liar': the plugin registered adaptive=True but its controller "
        r".*Lying declares adaptive=False",
    ):
        create_compressed_model(ToyModel(), {"compression": {"algorithm": "liar"}}, registry=registry)


def test_an_algorithm_without_the_models_framework() -> None:
    """The factory of another framework is never imported: the error comes first."""
    registry = Registry(get_plugin_manager(autoload=False, plugins=[MisdeclaringPlugin()]))
    with pytest.raises(UnsupportedFrameworkError) as info:
        create_compressed_model(ToyModel(), {"compression": {"algorithm": "torch_only"}}, registry=registry)
    assert str(info.value) == "algorithm 'torch_only' (aac-test) supports ['torch'], not the 'python' framework of this model"


def test_config_loading_defaults_to_the_installed_plugins_registry() -> None:
    """Config loading sits below plugin discovery and does not import it; the registry makes itself the default catalog."""
    assert default_catalog() is default_registry()
