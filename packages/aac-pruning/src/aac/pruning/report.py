"""Filter-pruning statistics: per-layer and whole-model tables, plus the groups kept whole and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from aac.core.graph import Metatype
from aac.core.statistics import AlgorithmStatistics, Table
from aac.pruning.cost import CostModel
from aac.pruning.groups import PruningAnalysis, Reason


def _level(full: float, current: float) -> float:
    return 1.0 - current / full if full else 0.0


#: why producer layers are kept whole: (reason kind, words the reasons must also contain, label), in priority
#: order - a kept group counts under the first that matches (see :class:`aac.pruning.groups.Reason`)
_KEPT_KINDS = (
    ("grouped", "", "grouped convolutions"),
    ("nonzero", "prune_batch_norms is false", "the batch-norm rule (prune_batch_norms: false)"),
    ("nonzero", "no affine parameters", "norms without parameters to mask"),
    ("op", "", "'{op}', which aac cannot follow"),
    ("norm", "", "norms across channels"),
    ("code", "", "channel counts read or written by the model's code"),
    ("attention", "", "attention layers aac cannot prune"),
    ("output", "", "model outputs"),
    ("first_layer", "", "first layers (prune_first_conv: false)"),
    ("downsample", "", "downsampling convolutions (prune_downsample_convs: false)"),
    ("scopes", "", "ignored_scopes / target_scopes"),
    ("nonzero", "", "pruned channels that would not stay zero"),
    ("mismatch", "", "channels that do not line up"),
)
_LAYER_KINDS = ((Metatype.CONV, "convolutions"), (Metatype.LINEAR, "linear layers"), (Metatype.ATTENTION, "attention layers"))


def _kept_label(reasons: Sequence[Reason]) -> str:
    for kind, words, label in _KEPT_KINDS:
        match = next((r for r in reasons if getattr(r, "kind", "") == kind and words in r), None)
        if match is not None:
            return label.format(op=match.op)
    return "other reasons"


def kept_counts(analysis: PruningAnalysis) -> dict[str, int]:
    """Producer layers kept whole, by their main reason (most first)."""
    counts: dict[str, int] = {}
    for kept in analysis.kept:
        label = _kept_label(kept.reasons)
        counts[label] = counts.get(label, 0) + len(kept.producers)
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def kept_summary(analysis: PruningAnalysis) -> str:
    """How many producer layers are kept whole and why, by kind: what to say when little can be pruned."""
    counts = kept_counts(analysis)
    pruned = sum(len(g.producers) for g in analysis.groups)
    kinds = ", ".join(f"{n} by {kind}" for kind, n in counts.items())
    return f"{pruned} producer layers in {len(analysis.groups)} prunable groups; {sum(counts.values())} kept whole" + (
        f" ({kinds}; the 'Layers kept whole' table of controller.statistics() lists each reason)" if kinds else ""
    )


def coverage(analysis: PruningAnalysis) -> dict[str, tuple[int, int]]:
    """Layers that lose filters and all layers, by kind (``{"convolutions": (5, 20), ...}``); a depthwise
    convolution that follows a pruned layer counts as losing filters."""
    result = {}
    for metatype, label in _LAYER_KINDS:
        layers = [layer for layer, kind in analysis.layer_types.items() if kind is metatype]
        if layers:
            plans = [analysis.layers.get(layer) for layer in layers]
            result[label] = (sum(1 for p in plans if p is not None and p.outputs is not None and p.outputs.groups), len(layers))
    return result


def coverage_line(analysis: PruningAnalysis) -> str:
    """``"5 of 20 convolutions and 1 of 2 linear layers lose filters"``."""
    parts = [f"{pruned} of {total} {label}" for label, (pruned, total) in coverage(analysis).items()]
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + (parts[-1] if parts else "no layers")
    return f"{text} can lose filters"


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
        for b, a in zip(before, after, strict=True)
        if b.layer in analysis.layers and b.has_filters
    )
    model_rows = [
        ("Parameters", cost.params(full) + other_params, cost.params(kept) + other_params),
        ("Filters", cost.filters(full), cost.filters(kept)),
    ]
    if cost.has_flops:
        model_rows.insert(0, ("FLOPs", int(cost.flops(full)), int(cost.flops(kept))))
    tables = [
        Table(
            f"Statistics of the pruned model ({coverage_line(analysis)})",
            ("Quantity", "Full", "Current", "Removed share"),
            tuple((q, f, c, _level(f, c)) for q, f, c in model_rows),
        ),
        Table(
            "Statistics by pruned layers",
            ("Layer", "Filters (full)", "Filters (kept)", "Inputs (full)", "Inputs (kept)", "Filters removed"),
            layer_rows,
        ),
    ]
    if analysis.kept:
        counts = ", ".join(f"{n} by {kind}" for kind, n in kept_counts(analysis).items())
        tables.append(
            Table(
                f"Layers kept whole ({counts})",
                ("Layers", "Reason"),
                tuple((", ".join(k.producers), "; ".join(k.reasons)) for k in analysis.kept),
            )
        )
    if unremovable:
        tables.append(
            Table(
                "Pruned layers strip() zeroes but cannot remove",
                ("Layers", "Reason"),
                tuple((", ".join(producers), reason) for producers, reason in unremovable.items()),
            )
        )
    model_scalars = {f"model_{q.lower()}_removed": _level(f, c) for q, f, c in model_rows}
    return AlgorithmStatistics(name, {**scalars, **model_scalars}, tables)
