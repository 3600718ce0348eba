"""HAWQ's choice of bit widths (NNCF's ``hawq`` precision initializer), on numbers the backend measured.

Each quantized weight ``i`` has an average Hessian trace ``t_i`` (the loss curvature per parameter,
estimated with Hutchinson's method) and, for each bit width ``b``, a quantization noise
``n_i(b) = ||Q_b(W_i) - W_i||^2``. An assignment costs ``sum_i t_i * n_i(b_i)``: noise where the loss is
flat is cheap. As in NNCF, only assignments whose bit widths never increase as the trace decreases are
considered (so a flatter layer never gets more bits than a sharper one), and the cheapest of those whose
bit-complexity ratio reaches ``compression_ratio`` wins (ties: the higher ratio).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations_with_replacement

from aac.quant.precision.inventory import Inventory


class PrecisionError(ValueError):
    """No bit-width assignment meets the configured constraint; the message gives the reachable range."""


@dataclass(frozen=True)
class Candidate:
    """One bit-width assignment of the weights, its bit-complexity ratio and its HAWQ cost."""

    bits: Mapping[str, int]
    ratio: float
    metric: float


@dataclass(frozen=True)
class HawqChoice:
    """The chosen assignment, every candidate considered, and the weights from the sharpest to the flattest."""

    chosen: Candidate
    candidates: tuple[Candidate, ...]
    order: tuple[str, ...]


def choose_bits(
    inventory: Inventory,
    traces: Mapping[str, float],
    noise: Mapping[str, Mapping[int, float]],
    bits: Sequence[int],
    compression_ratio: float,
    mode: str = "liberal",
) -> HawqChoice:
    """The cheapest monotone assignment whose bit-complexity ratio is at least ``compression_ratio``.

    :param traces: average Hessian trace per weight key.
    :param noise: per weight key, the quantization noise at each bit width of ``bits``.
    :param mode: ``liberal`` (each weight on its own) or ``strict`` (the weights fed by one activation
        quantizer share a bit width, see :meth:`Inventory.groups`).
    """
    groups = inventory.groups(mode)
    sharpest = sorted(range(len(groups)), key=lambda g: -max(traces[k] for k in groups[g]))
    options = sorted(set(bits), reverse=True)
    candidates = []
    for combo in combinations_with_replacement(range(len(options)), len(groups)):
        assignment = {key: options[index] for position, index in zip(sharpest, combo, strict=True) for key in groups[position]}
        ratio = inventory.bit_complexity_ratio(assignment, inventory.activation_bits(assignment, mode))
        metric = sum(traces[key] * noise[key][b] for key, b in assignment.items())
        candidates.append(Candidate(assignment, ratio, metric))
    feasible = [c for c in candidates if c.ratio >= compression_ratio * (1 - 1e-9)]
    if not feasible:
        ratios = [c.ratio for c in candidates]
        raise PrecisionError(
            f"hawq cannot reach compression_ratio {compression_ratio:g} with bits {sorted(options)}: the bit-width "
            f"assignments it considers reach ratios from {min(ratios):.3f} to {max(ratios):.3f}"
        )
    chosen = min(feasible, key=lambda c: (c.metric, -c.ratio))
    order = tuple(key for g in sharpest for key in groups[g])
    return HawqChoice(chosen, tuple(candidates), order)
