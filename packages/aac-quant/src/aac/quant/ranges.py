"""Range statistics for quantizer initialization (NumPy): from observed values to ``(low, high)``.

A :class:`RangeCollector` is fed the tensor a quantizer sees, batch after batch, and returns the
range its statistic implies - one value per tensor, or one per channel. The backend only has to
hand over arrays; every backend therefore initializes ranges identically.

Statistics that need the values themselves (percentiles, median and MAD) keep a bounded, seeded
random sample of each batch, so memory stays small however many samples are used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from aac.quant.settings import RangeSettings

if TYPE_CHECKING:
    from aac.quant.algorithm import Quantizer

logger = logging.getLogger("aac.quant")
#: the algorithms (quantizer owners) already warned that a quantizer took its range from the first batch it saw
_lazy_warned: set[str] = set()

RANGE_TYPES = ("mixed_min_max", "min_max", "mean_min_max", "threesigma", "percentile", "mean_percentile")
#: values kept per channel and batch for the sample-based statistics
SAMPLE_PER_BATCH = 4096


def _by_channel(values: np.ndarray, axis: int | None) -> np.ndarray:
    """``values`` as a 2-d array: one row per channel (a single row when ``axis`` is None)."""
    values = np.asarray(values, dtype=np.float64)
    if axis is None:
        return values.reshape(1, -1)
    return np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)


@dataclass
class RangeCollector:
    """Collects one statistic over batches.

    :param kind: one of :data:`RANGE_TYPES`.
    :param axis: the channel axis for per-channel ranges, or None for one range per tensor.
    """

    kind: str = "mixed_min_max"
    axis: int | None = None
    min_percentile: float = 0.1
    max_percentile: float = 99.9
    seed: int = 0
    _mins: list[np.ndarray] = field(default_factory=list, repr=False)
    _maxs: list[np.ndarray] = field(default_factory=list, repr=False)
    _samples: list[np.ndarray] = field(default_factory=list, repr=False)
    _negative: bool = field(default=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in RANGE_TYPES:
            raise ValueError(f"unknown range initializer '{self.kind}'; use one of {', '.join(RANGE_TYPES)}")
        self._rng = np.random.default_rng(self.seed)

    @property
    def batches(self) -> int:
        return len(self._mins)

    def update(self, values: np.ndarray) -> None:
        """Add one batch (any shape; per-channel collectors need the channel ``axis`` in it)."""
        rows = _by_channel(values, self.axis)
        if rows.shape[1] == 0:
            return
        self._negative = self._negative or bool(rows.min() < 0)
        if self.kind in ("percentile", "threesigma"):
            self._mins.append(rows.min(axis=1))
            if rows.shape[1] > SAMPLE_PER_BATCH:
                rows = rows[:, self._rng.choice(rows.shape[1], SAMPLE_PER_BATCH, replace=False)]
            self._samples.append(rows)
        elif self.kind == "mean_percentile":
            low, high = np.percentile(rows, [self.min_percentile, self.max_percentile], axis=1)
            self._mins.append(low)
            self._maxs.append(high)
        else:
            self._mins.append(rows.min(axis=1))
            self._maxs.append(rows.max(axis=1))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)``: 0-d arrays per tensor, 1-d per channel. Raises if nothing was collected."""
        if not self._mins:
            raise ValueError("no values were collected")
        if self.kind in ("percentile", "threesigma"):
            values = np.concatenate(self._samples, axis=1)
            if self.kind == "percentile":
                low, high = np.percentile(values, [self.min_percentile, self.max_percentile], axis=1)
            else:
                median = np.median(values, axis=1)
                mad = np.median(np.abs(values - median[:, None]), axis=1)
                low, high = median - 3.0 * mad, median + 3.0 * mad
        else:
            mins, maxs = np.stack(self._mins), np.stack(self._maxs)
            if self.kind == "min_max":
                low, high = mins.min(axis=0), maxs.max(axis=0)
            elif self.kind == "mixed_min_max":
                low, high = mins.min(axis=0), maxs.mean(axis=0)
            else:  # mean_min_max, mean_percentile
                low, high = mins.mean(axis=0), maxs.mean(axis=0)
        if self.axis is None:
            return np.asarray(low[0]), np.asarray(high[0])
        return np.asarray(low), np.asarray(high)

    def has_negative(self) -> bool:
        """True if any observed value was negative (decides the sign of an unsigned-or-signed grid)."""
        return self._negative


def collector_for(settings: RangeSettings, axis: int | None, seed: int = 0) -> RangeCollector:
    """The collector an ``initializer.range`` entry asks for (per channel along ``axis``, or per tensor)."""
    return RangeCollector(settings.type, axis, settings.min_percentile, settings.max_percentile, seed)


@dataclass
class Collection:
    """Range statistics being gathered for one quantizer (during ``initialize``), with its sample budget."""

    collector: RangeCollector
    samples_left: int | None = None
    batches_left: int | None = None

    @property
    def done(self) -> bool:
        return (self.samples_left is not None and self.samples_left <= 0) or (self.batches_left is not None and self.batches_left <= 0)

    def observe(self, values: np.ndarray) -> None:
        """One batch of what the quantizer sees (batch first; a 0-d array counts as one sample)."""
        if self.done:
            return
        values = np.asarray(values)
        self.collector.update(values)
        if self.samples_left is not None:
            self.samples_left -= int(values.shape[0]) if values.ndim > 0 else 1
        if self.batches_left is not None:
            self.batches_left -= 1


def initialize_from_first_batch(quantizer: Quantizer, values: np.ndarray) -> None:
    """The range of an activation quantizer used before ``initialize``: ``quantizer.lazy_range``'s statistic over
    ``values``, the first batch it sees (one warning per algorithm, naming the first such quantizer)."""
    if quantizer.lazy_range is None:
        raise ValueError(f"the quantizer of {quantizer.label or 'a layer input'} has no range entry to initialize from")
    collector = collector_for(quantizer.lazy_range, None if quantizer.channels is None else quantizer.axis % values.ndim)
    collector.update(values)
    quantizer.apply_statistics(collector)
    if quantizer.owner not in _lazy_warned:
        _lazy_warned.add(quantizer.owner)
        logger.warning(
            "[aac] %s: activation quantizers initialized their ranges from the first batch they saw (%s first); "
            "call controller.initialize(data_loader) after create_compressed_model for a proper range initialization",
            quantizer.owner,
            quantizer.label or "a layer input",
        )
