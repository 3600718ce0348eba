"""How important each filter is (``filter_importance``), computed with NumPy on any framework's weights.

Every function takes a layer's weights as a 2-D array, one row per filter (the backend moves the
output axis first and flattens the rest), and returns one score per filter; a higher score keeps
the filter longer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ImportanceFunction = Callable[[np.ndarray], np.ndarray]


def l1_norm(filters: np.ndarray) -> np.ndarray:
    """Sum of absolute weights of each filter."""
    return np.abs(filters).sum(axis=1, dtype=np.float64)


def l2_norm(filters: np.ndarray) -> np.ndarray:
    """Euclidean norm of each filter."""
    return np.sqrt(np.square(filters, dtype=np.float64).sum(axis=1))


def geometric_median(filters: np.ndarray) -> np.ndarray:
    """Sum of Euclidean distances from each filter to all others.

    A filter close to the geometric median of its layer is the one the others can best stand in
    for, so it is pruned first (He et al., "Filter Pruning via Geometric Median", 2019). Distances
    come from the Gram matrix: one matrix product instead of a Python loop over pairs.
    """
    x = filters.astype(np.float64, copy=False)
    squared = np.square(x).sum(axis=1)
    distances = squared[:, None] + squared[None, :] - 2.0 * (x @ x.T)
    return np.sqrt(np.maximum(distances, 0.0)).sum(axis=1)


IMPORTANCE: dict[str, ImportanceFunction] = {"L1": l1_norm, "L2": l2_norm, "geometric_median": geometric_median}


def normalized(scores: np.ndarray) -> np.ndarray:
    """Scores divided by their L2 norm, so layers of different scale can be ranked together (``all_weights``)."""
    norm = float(np.linalg.norm(scores))
    return scores / norm if norm > 0 else scores
