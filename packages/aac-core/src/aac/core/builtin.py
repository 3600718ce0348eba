"""Core's own plugins: the generic backend and the built-in search strategies (this module, plugin
``core``, essential), and one plugin per run reporter (:class:`ReporterPlugin`, blockable).

They are registered through the same hooks as a third-party plugin, which keeps the hooks honest:
whatever core can do through them, a plugin can do too. A reporter is a plugin of its own so that
``AAC_DISABLED_PLUGINS=core-plot`` (say) switches just that one off; the backend and the strategies
cannot be blocked, because configs and the loops rely on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aac.core.backend import GenericBackend
from aac.core.hookspecs import hookimpl
from aac.core.specs import BackendSpec, SearchStrategySpec
from aac.core.training.observers import REPORTERS, LoopObserver, RunContext


@hookimpl
def aac_backends() -> Iterable[BackendSpec]:
    return [
        BackendSpec(
            name=GenericBackend.name,
            claims=GenericBackend.claims,
            factory=GenericBackend,
            package="aac-core",
            priority=-100,
            description="any object with state_dict()/load_state_dict(); JSON checkpoints",
        )
    ]


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


class ReporterPlugin:
    """One of core's reporters (console, history, plot, TensorBoard) as a plugin of its own."""

    def __init__(self, make: Callable[[RunContext], LoopObserver | None]) -> None:
        self.make = make

    @hookimpl
    def aac_loop_observers(self, context: RunContext) -> Iterable[LoopObserver]:
        observer = self.make(context)
        return [] if observer is None else [observer]


def reporter_plugins() -> dict[str, ReporterPlugin]:
    """Plugin name -> plugin, in reporting order."""
    return {name: ReporterPlugin(make) for name, make in REPORTERS.items()}
