"""A registration hook that raises: the whole plugin is disabled, its search strategy included."""

from __future__ import annotations

from collections.abc import Iterable

from aac.core import AlgorithmSpec, SearchStrategySpec, hookimpl


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    raise RuntimeError("licence server unreachable")


@hookimpl
def aac_search_strategies() -> Iterable[SearchStrategySpec]:
    return [SearchStrategySpec(name="never_offered", factory="aac.core.training.search:StepSearch")]
