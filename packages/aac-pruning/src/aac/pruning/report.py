"""Filter-pruning statistics: per-layer and whole-model tables, plus the groups kept whole and why."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aac.core.statistics import AlgorithmStatistics, Table
from aac.pruning.cost import CostModel
from aac.pruning.groups import PruningAnalysis


def _level(full: float, current: float) -> float:
    return 1.0 - current / full if full else 0.0


def pruning_statistics(
    name: str,
    analysis: PruningAnalysis,
    cost: CostModel,
    kept: np.ndarray,
    other_params: int,
    scalars: Mapping[str, float],
    unremovable: Mapping[tuple[str, ...], str] | None = None,
) -> AlgorithmStatistics:
    """Statistics for the allocation ``kept`` (filters kept per group).

    :param other_params: parameters outside the layers the cost model knows (embeddings, custom
        parameters); they count in the model's total and are never pruned.
    :param unremovable: producers of groups whose pruned filters ``strip()`` zeroes instead of
        removing, with the reason (a backend that cannot rebuild those layers smaller).
    """
    full = np.array([g.channels for g in analysis.groups], dtype=np.int64)
    before, after = cost.per_layer(full), cost.per_layer(kept)
    layer_rows = tuple(
        (b.layer, b.out_channels, a.out_channels, b.in_channels, a.in_channels, _level(b.out_channels, a.out_channels))
        for b, a in zip(before, after, strict=True) if b.layer in analysis.layers and b.has_filters
    )
    model_rows = [
        ("Parameters", cost.params(full) + other_params, cost.params(kept) + other_params),
        ("Filters", cost.filters(full), cost.filters(kept)),
    ]
    if cost.has_flops:
        model_rows.insert(0, ("FLOPs", int(cost.flops(full)), int(cost.flops(kept))))
    tables = [
        Table("Statistics of the pruned model", ("Quantity", "Full", "Current", "Removed share"),
              tuple((q, f, c, _level(f, c)) for q, f, c in model_rows)),
        Table("Statistics by pruned layers",
              ("Layer", "Filters (full)", "Filters (kept)", "Inputs (full)", "Inputs (kept)", "Filters removed"),
              layer_rows),
    ]
    if analysis.kept:
        tables.append(Table("Layers kept whole", ("Layers", "Reason"),
                            tuple((", ".join(k.producers), "; ".join(k.reasons)) for k in analysis.kept)))
    if unremovable:
        tables.append(Table("Pruned layers strip() zeroes but cannot remove", ("Layers", "Reason"),
                            tuple((", ".join(producers), reason) for producers, reason in unremovable.items())))
    model_scalars = {f"model_{q.lower()}_removed": _level(f, c) for q, f, c in model_rows}
    return AlgorithmStatistics(name, {**scalars, **model_scalars}, tables)
