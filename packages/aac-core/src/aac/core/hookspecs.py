"""The hooks an aac plugin can implement.

A plugin is a module listed under the ``aac`` entry-point group::

    # pyproject.toml of your package
    [project.entry-points.aac]
    my_algorithm = "my_package.aac_plugin"

and that module implements any of the hooks below with :data:`aac.core.hookimpl`. Every hook is a
*registration* hook: it returns records, it is called once when the registry is built, and none of
them runs per batch. See ``docs/plugins.md`` for the full guide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from aac.core.specs import AlgorithmSpec, BackendSpec, SearchStrategySpec
    from aac.core.training.observers import LoopObserver, RunContext

#: project name: the pluggy marker name and the entry-point group
NAME = "aac"

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)

__all__ = ["NAME", "aac_algorithms", "aac_backends", "aac_loop_observers", "aac_search_strategies", "hookimpl", "hookspec"]


# ---------------------------------------------------------------------------------------------
# registration hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    """Register compression algorithms.

    :return: one :class:`~aac.core.specs.AlgorithmSpec` per algorithm.

    Example::

        @hookimpl
        def aac_algorithms():
            return [AlgorithmSpec(name="my_pruning", adaptive=True,
                                  frameworks={"torch": "my_package.torch_algo:build"},
                                  schema=MY_SCHEMA, package="my-package")]
    """


@hookspec
def aac_backends() -> Iterable[BackendSpec]:
    """Register framework backends (model wrapping, checkpoints, learning-rate handling).

    :return: one :class:`~aac.core.specs.BackendSpec` per framework.

    Example::

        @hookimpl
        def aac_backends():
            return [BackendSpec(name="jax", claims=is_flax_module, factory="my_package.backend:JaxBackend")]
    """


@hookspec
def aac_search_strategies() -> Iterable[SearchStrategySpec]:
    """Register compression-rate search strategies for the adaptive loop.

    :return: one :class:`~aac.core.specs.SearchStrategySpec` per strategy; a config selects one with
        ``"accuracy_aware_training": {"params": {"search_strategy": "<name>"}}``.

    Example::

        @hookimpl
        def aac_search_strategies():
            return [SearchStrategySpec(name="bisect", factory=BisectSearch)]
    """


@hookspec
def aac_loop_observers(context: RunContext) -> Iterable[LoopObserver]:
    """Attach observers to an accuracy-aware training run.

    Called once at the start of every ``run()``.

    :param context: the run's log directory, TensorBoard writer, verbosity and whether this
        process is the main one (observers that write files should do nothing on other ranks).
    :return: :class:`~aac.core.training.observers.LoopObserver` objects; each is told about the start,
        every epoch, every level change and the end of the run.

    Example::

        @hookimpl
        def aac_loop_observers(context):
            if context.is_main_process:
                return [WandbObserver()]
            return []
    """
