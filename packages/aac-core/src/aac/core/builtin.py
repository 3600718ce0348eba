"""Core's own plugin: the generic backend, the built-in search strategies and the run reporters.

It is registered exactly like a third-party plugin (entry point ``core`` of the ``aac`` group), which
keeps the hooks honest: whatever core can do through them, a plugin can do too.
"""

from __future__ import annotations

from collections.abc import Iterable

from aac.core.backend import GenericBackend
from aac.core.hookspecs import hookimpl
from aac.core.specs import BackendSpec, SearchStrategySpec
from aac.core.training.observers import LoopObserver, RunContext, default_observers


@hookimpl
def aac_backends() -> Iterable[BackendSpec]:
    return [BackendSpec(
        name=GenericBackend.name,
        claims=GenericBackend.claims,
        factory=GenericBackend,
        package="aac-core",
        priority=-100,
        description="any object with state_dict()/load_state_dict(); JSON checkpoints",
    )]


@hookimpl
def aac_search_strategies() -> Iterable[SearchStrategySpec]:
    return [
        SearchStrategySpec(
            name="frontier",
            factory="aac.core.training.search:FrontierSearch",
            description="the default: probe-guided climbing on the controller's real levels, bracketing the frontier",
        ),
        SearchStrategySpec(
            name="step",
            factory="aac.core.training.search:StepSearch",
            description="NNCF's search: climb by a step, halve the step on each change of direction",
        ),
    ]


@hookimpl
def aac_loop_observers(context: RunContext) -> Iterable[LoopObserver]:
    return default_observers(context)
