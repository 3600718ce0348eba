"""The quantization grid: integer levels, how a range maps onto them, and what ONNX needs (NumPy).

A quantizer with ``n`` levels, a step ``s`` and a zero index ``z`` (the level that represents 0)
maps ``x`` to ``(clip(round(x / s) + z, 0, n - 1) - z) * s``. The two modes parameterise that grid:

* **symmetric**: a scale ``S`` (the top of the range); signed grids have levels ``[qmin, qmax]``
  with ``qmax = 2^(b-1) - 1`` and ``qmin = -qmax - 1`` (``-qmax`` with ``narrow_range``), unsigned
  grids ``[0, 2^b - 1]``; ``s = S / qmax`` and ``z = -qmin``.
* **asymmetric**: a low end ``L`` and a range ``R``; ``s = R / (n - 1)`` and ``z = round(-L / s)``,
  so that zero falls exactly on a level (the grid is shifted by less than half a step).

These are the conventions of NNCF's quantizers. The torch quantizers compute the same formulas on
tensors (with straight-through rounding); the functions here serve range initialization, export
and every other backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: smallest scale or range a quantizer is given (a constant tensor would otherwise get a zero step)
MIN_RANGE = 1e-8


@dataclass(frozen=True)
class Levels:
    """Integer levels ``qmin..qmax`` of a grid (``qmin <= 0 <= qmax``)."""

    qmin: int
    qmax: int

    @property
    def count(self) -> int:
        return self.qmax - self.qmin + 1

    @property
    def zero_index(self) -> int:
        """Index (in ``0..count-1``) of the level that represents 0, for symmetric grids."""
        return -self.qmin


def levels(bits: int, signed: bool, narrow_range: bool = False) -> Levels:
    """The levels of a symmetric grid; asymmetric grids use ``levels(bits, False)`` (``0..2^b - 1``)."""
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be between 2 and 8, got {bits}")
    if not signed:
        return Levels(0, 2**bits - 1)
    qmax = 2 ** (bits - 1) - 1
    return Levels(-qmax if narrow_range else -qmax - 1, qmax)


def symmetric_scale(low: np.ndarray, high: np.ndarray, signed: bool) -> np.ndarray:
    """The scale covering ``[low, high]``: ``max(|low|, |high|)`` (signed) or ``max(high, 0)`` (unsigned)."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    top = np.maximum(np.abs(low), np.abs(high)) if signed else np.maximum(high, 0.0)
    return np.maximum(top, MIN_RANGE)


def asymmetric_range(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(input_low, input_range)`` covering ``[low, high]`` and zero (so that zero is representable)."""
    low = np.minimum(np.asarray(low, dtype=np.float64), 0.0)
    high = np.maximum(np.asarray(high, dtype=np.float64), 0.0)
    return low, np.maximum(high - low, MIN_RANGE)


def symmetric_grid(scale: np.ndarray, grid: Levels) -> tuple[np.ndarray, np.ndarray]:
    """``(step, zero_index)`` of a symmetric quantizer with ``scale``."""
    step = np.maximum(np.abs(np.asarray(scale, dtype=np.float64)), MIN_RANGE) / grid.qmax
    return step, np.full(step.shape, grid.zero_index, dtype=np.int64)


def asymmetric_grid(input_low: np.ndarray, input_range: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(step, zero_index)`` of an asymmetric quantizer; zero lands exactly on a level."""
    step = np.maximum(np.abs(np.asarray(input_range, dtype=np.float64)), MIN_RANGE) / (count - 1)
    zero = np.clip(np.round(-np.asarray(input_low, dtype=np.float64) / step), 0, count - 1).astype(np.int64)
    return step, zero


def fake_quantize(x: np.ndarray, step: np.ndarray, zero_index: np.ndarray, count: int) -> np.ndarray:
    """Reference fake quantization (round half to even, as ONNX and torch do)."""
    q = np.clip(np.round(x / step) + zero_index, 0, count - 1)
    return (q - zero_index) * step


@dataclass(frozen=True)
class ExportGrid:
    """A grid as ``QuantizeLinear``/``DequantizeLinear`` parameters.

    ``scale``/``zero_point`` are per tensor (0-d) or per channel (1-d); ``dtype`` is ``"int8"`` or
    ``"uint8"``. When the grid is narrower than the storage type (fewer than 8 bits, or the narrow
    signed range) the input must first be clipped to ``[clip_low, clip_high]``: QDQ of the clipped
    input is then exactly the fake quantization.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str
    clip_low: np.ndarray | None = None
    clip_high: np.ndarray | None = None


def export_grid(step: np.ndarray, zero_index: np.ndarray, count: int) -> ExportGrid:
    """The QDQ form of a grid of ``count`` levels with ``step`` and ``zero_index``.

    Grids centred on a common zero (symmetric signed: ``count / 2`` of an even count, or the middle
    of an odd, narrow one) are stored as int8 with zero point 0; all others as uint8 with the zero
    index as zero point.
    """
    step = np.asarray(step, dtype=np.float64)
    zero_index = np.asarray(zero_index, dtype=np.int64)
    zero = int(zero_index.flat[0])
    centre = count // 2 if count % 2 == 0 else (count - 1) // 2
    signed = bool(np.all(zero_index == zero)) and zero > 0 and zero == centre
    if signed:
        dtype, zero_point, full = "int8", np.zeros_like(zero_index), (zero, count) == (128, 256)
    else:
        dtype, zero_point, full = "uint8", zero_index, count == 256
    if full:
        return ExportGrid(step, zero_point, dtype)
    return ExportGrid(step, zero_point, dtype, clip_low=-zero_index * step, clip_high=(count - 1 - zero_index) * step)
