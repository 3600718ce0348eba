"""Names that others registered first: the example plugin's algorithm and core's search strategy."""

from __future__ import annotations

from collections.abc import Iterable

from aac.core import AlgorithmSpec, SearchStrategySpec, hookimpl


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            name="weight_clipping", adaptive=False, frameworks={"python": "aac_broken_plugin.missing:build"}, package="aac-broken-plugin"
        )
    ]


@hookimpl
def aac_search_strategies() -> Iterable[SearchStrategySpec]:
    return [SearchStrategySpec(name="step", factory="aac_broken_plugin.missing:Step")]
