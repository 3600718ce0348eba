"""From a sparsity level to masks: importance, how many weights to zero, and which (NumPy).

One rule everywhere: at level ``L`` a set of ``n`` weights loses exactly ``prune_count(L, n)`` of
them - the least important ones, ties going to the lower index first. So the zero fraction of the
sparsified weights is ``L`` up to rounding (``<= 0.5 / n``), which is what makes the
``compression_rate`` getter agree with its setter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IMPORTANCES = ("normed_abs", "abs")


def prune_count(level: float, n: int) -> int:
    """How many of ``n`` weights are zero at ``level`` (nearest integer, within ``[0, n]``)."""
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"a sparsity level is a fraction in [0, 1], got {level}")
    return min(n, max(0, int(np.floor(level * n + 0.5))))


def importance(weight: np.ndarray, kind: str = "normed_abs") -> np.ndarray:
    """``|w|`` (``abs``) or ``|w| / ||W||_2`` (``normed_abs``: layers of different scale compete fairly)."""
    magnitude = np.abs(weight.astype(np.float64, copy=False))
    if kind == "abs":
        return magnitude
    if kind == "normed_abs":
        norm = float(np.sqrt(np.sum(magnitude * magnitude)))
        return magnitude / norm if norm > 0 else magnitude
    raise ValueError(f"unknown weight_importance '{kind}'; use one of {', '.join(IMPORTANCES)}")


def keep_mask(scores: np.ndarray, level: float) -> tuple[np.ndarray, float]:
    """Boolean keep-mask zeroing the ``prune_count(level, n)`` lowest ``scores`` (flattened), and the threshold.

    The threshold is the highest pruned score (``-inf`` when nothing is pruned): every kept weight
    scores at least as high. Ties at the threshold are pruned lowest index first.
    """
    flat = scores.reshape(-1)
    k = prune_count(level, flat.size)
    keep = np.ones(flat.size, dtype=bool)
    if k == 0:
        return keep.reshape(scores.shape), float("-inf")
    if k == flat.size:
        return np.zeros(scores.shape, dtype=bool), float(flat.max())
    threshold = float(np.partition(flat, k - 1)[k - 1])
    below = flat < threshold
    tied = np.flatnonzero(flat == threshold)
    keep[below] = False
    keep[tied[: k - int(below.sum())]] = False
    return keep.reshape(scores.shape), threshold


def global_masks(scores: Sequence[np.ndarray], level: float) -> tuple[list[np.ndarray], float]:
    """One level over all layers together: the ``level`` fraction of all weights with the lowest scores."""
    sizes = [s.size for s in scores]
    flat = np.concatenate([s.reshape(-1) for s in scores]) if scores else np.zeros(0)
    keep, threshold = keep_mask(flat, level)
    parts = np.split(keep, np.cumsum(sizes)[:-1]) if scores else []
    return [p.reshape(s.shape) for p, s in zip(parts, scores, strict=True)], threshold


def local_masks(scores: Sequence[np.ndarray], levels: Sequence[float]) -> tuple[list[np.ndarray], list[float]]:
    """Each layer at its own level."""
    results = [keep_mask(s, level) for s, level in zip(scores, levels, strict=True)]
    return [m for m, _ in results], [t for _, t in results]


def weighted_level(levels: Sequence[float], sizes: Sequence[int]) -> float:
    """The level of several layers together: their levels weighted by weight count."""
    total = sum(sizes)
    return float(sum(level * size for level, size in zip(levels, sizes, strict=True)) / total) if total else 0.0
