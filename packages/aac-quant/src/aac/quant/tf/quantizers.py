"""Keras fake quantizers with learnable ranges, and the fixed QDQ layer they become when stripped.

The grid is :mod:`aac.quant.grid`'s: ``(clip(round(x / step) + zero, 0, n - 1) - zero) * step`` with
NNCF's conventions (symmetric: a learnable scale, signed or unsigned levels; asymmetric: a learnable
low end and range, the zero rounded onto a level). Rounding is straight-through, so the gradients are
NNCF's: ``x`` passes inside the range, the step gets ``(fq(x) - x) / step`` inside and ``fq(x) / step``
outside. Everything the forward pass reads is a variable (signedness too), so a traced ``fit`` step
follows range initialization.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from aac.quant.algorithm import QuantizationError
from aac.quant.grid import MIN_RANGE, asymmetric_grid, asymmetric_range, levels, symmetric_grid, symmetric_scale
from aac.quant.ranges import Collection, RangeCollector, initialize_from_first_batch
from aac.quant.settings import ASYMMETRIC, SYMMETRIC, QuantizerSettings, RangeSettings
from aac.tf.transforms import WeightTransform


def _round_ste(x: Any) -> Any:
    return x + ops.stop_gradient(ops.round(x) - x)


class TFFakeQuantizer(WeightTransform):
    """A learnable fake quantizer; a weight transform (on a kernel) or an input quantizer (see the algorithm).

    :param channels: per-channel quantization along ``axis`` (negative, counted from the end), or None.
    """

    def __init__(
        self,
        owner: str,
        mode: str = SYMMETRIC,
        bits: int = 8,
        signed: bool | None = None,
        narrow_range: bool = False,
        channels: int | None = None,
        axis: int = -1,
        **kwargs: Any,
    ) -> None:
        super().__init__(owner, **kwargs)
        self.mode, self.bits, self.signed_setting, self.narrow_range = mode, int(bits), signed, bool(narrow_range)
        self.channels, self.axis = channels, int(axis)
        self.collection: Collection | None = None
        self.lazy_range: RangeSettings | None = None
        self.label = ""

    @classmethod
    def from_settings(cls, settings: QuantizerSettings, owner: str, channels: int | None, axis: int) -> TFFakeQuantizer:
        return cls(
            owner, settings.mode, settings.bits, settings.signed, settings.narrow_range, channels if settings.per_channel else None, axis
        )

    def build(self, weight_shape: tuple[int, ...] = ()) -> None:
        shape = (self.channels,) if self.channels is not None else ()
        if self.mode == ASYMMETRIC:
            self.input_low = self.add_weight(name="input_low", shape=shape, initializer="zeros")
            self.input_range = self.add_weight(name="input_range", shape=shape, initializer="ones")
        else:
            self.scale = self.add_weight(name="scale", shape=shape, initializer="ones")
        self.signed_flag = self.add_weight(
            name="signed",
            shape=(),
            trainable=False,
            aggregation="only_first_replica",
            initializer=keras.initializers.Constant(float(bool(self.signed_setting))),
        )
        self.initialized = self.add_weight(
            name="initialized", shape=(), initializer="zeros", trainable=False, aggregation="only_first_replica"
        )
        #: 0 passes the input through (staged quantization before the group's start epoch); a variable, so a traced fit follows it
        self.enabled_flag = self.add_weight(name="enabled", shape=(), initializer="ones", trainable=False, aggregation="only_first_replica")
        self.built = True

    # -- grid ------------------------------------------------------------------------------
    @property
    def signed(self) -> bool:
        return self.mode != ASYMMETRIC and bool(self.signed_flag.numpy() > 0.5)

    @property
    def is_initialized(self) -> bool:
        return bool(self.initialized.numpy() > 0.5)

    def mark_initialized(self, value: bool = True) -> None:
        self.initialized.assign(float(value))

    @property
    def enabled(self) -> bool:
        return bool(self.enabled_flag.numpy() > 0.5)

    def set_enabled(self, enabled: bool) -> None:
        """Switch fake quantization on or off (off: the input passes through; range statistics are still collected)."""
        self.enabled_flag.assign(float(bool(enabled)))

    def set_bits(self, bits: int) -> None:
        """Change the bit width (mixed precision); the range is kept, the step follows. A Keras function traced
        before (a running ``fit``) keeps the old width: choose bit widths before training, as ``initialize`` does."""
        self.bits = int(bits)

    def step_and_zero_numpy(self) -> tuple[np.ndarray, np.ndarray, int]:
        """``(step, zero index, level count)`` of the current grid (NumPy; per channel or 0-d)."""
        if self.mode == ASYMMETRIC:
            count = 2**self.bits
            step, zero = asymmetric_grid(self.input_low.numpy(), self.input_range.numpy(), count)
            return step, zero, count
        grid = levels(self.bits, self.signed, self.narrow_range and self.signed)
        step, zero = symmetric_grid(self.scale.numpy(), grid)
        return step, zero, grid.count

    def current_range(self) -> tuple[np.ndarray, np.ndarray]:
        step, zero, count = self.step_and_zero_numpy()
        return -zero * step + 0.0, (count - 1 - zero) * step

    def set_range(self, low: np.ndarray, high: np.ndarray) -> None:
        shape = (self.channels,) if self.channels is not None else ()
        if self.mode == ASYMMETRIC:
            input_low, input_range = asymmetric_range(low, high)
            self.input_low.assign(np.broadcast_to(input_low, shape).astype("float32"))
            self.input_range.assign(np.broadcast_to(input_range, shape).astype("float32"))
        else:
            self.scale.assign(np.broadcast_to(symmetric_scale(low, high, self.signed), shape).astype("float32"))

    def apply_statistics(self, collector: RangeCollector) -> None:
        low, high = collector.result()
        if self.signed_setting is None and self.mode != ASYMMETRIC:
            self.signed_flag.assign(float(collector.has_negative()))
        self.set_range(low, high)
        self.mark_initialized()

    def channel_axis(self, ndim: int) -> int | None:
        return None if self.channels is None else self.axis % ndim

    # -- forward ---------------------------------------------------------------------------
    def call(self, x: Any) -> Any:
        if self.collection is not None:  # range initialization (eager): observe, pass through
            self.collection.observe(np.asarray(ops.convert_to_numpy(x), dtype=np.float32))
            return x
        if self.lazy_range is not None and _eager() and not self.is_initialized:
            initialize_from_first_batch(self, np.asarray(ops.convert_to_numpy(x), dtype=np.float32))
        enabled = ops.cast(self.enabled_flag, x.dtype)
        return x + enabled * (self.fake_quantize(x) - x)

    def _broadcast(self, v: Any, ndim: int) -> Any:
        if self.channels is None or len(v.shape) == 0:
            return v
        trailing = -self.axis - 1
        return ops.reshape(v, (self.channels,) + (1,) * trailing) if trailing > 0 else v

    def fake_quantize(self, x: Any) -> Any:
        dtype = x.dtype
        x = ops.cast(x, "float32")
        ndim = len(x.shape)
        if self.mode == ASYMMETRIC:
            count = float(2**self.bits)
            step = ops.maximum(ops.abs(self.input_range), MIN_RANGE) / (count - 1.0)
            zero = ops.clip(_round_ste(-self.input_low / step), 0.0, count - 1.0)
        else:
            signed = ops.cast(self.signed_flag, "float32")
            qmax_signed = float(2 ** (self.bits - 1) - 1)
            qmin_signed = -qmax_signed if self.narrow_range else -qmax_signed - 1.0
            qmax = signed * qmax_signed + (1.0 - signed) * float(2**self.bits - 1)
            zero = -signed * qmin_signed
            count = qmax + zero + 1.0
            step = ops.maximum(ops.abs(self.scale), MIN_RANGE) / qmax
        step, zero = self._broadcast(step, ndim), self._broadcast(zero, ndim)
        q = ops.clip(_round_ste(x / step) + zero, 0.0, count - 1.0) - zero
        return ops.cast(q * step, dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mode": self.mode,
            "bits": self.bits,
            "signed": self.signed_setting,
            "narrow_range": self.narrow_range,
            "channels": self.channels,
            "axis": self.axis,
        }

    def select_channels(self, axis: int, index: np.ndarray, weight_shape: tuple[int, ...]) -> WeightTransform:
        """Follow structured pruning: a cut along the quantizer's own channel axis keeps those channels' ranges;
        any other cut (a kernel's input channels), or a per-tensor quantizer, keeps the quantizer as it is."""
        if self.channels is None or axis % len(weight_shape) != self.axis % len(weight_shape):
            twin = super().select_channels(axis, index, weight_shape)
        else:
            index = np.asarray(index)
            twin = type(self).from_config({**self.get_config(), "channels": len(index)})
            twin.build(tuple(weight_shape))
            for mine, theirs in zip(self.variables, twin.variables, strict=True):
                value = np.asarray(mine.numpy())
                theirs.assign(np.take(value, index, axis=0) if value.shape == (self.channels,) else value)
        assert isinstance(twin, TFFakeQuantizer)
        twin.label, twin.lazy_range = self.label, self.lazy_range
        return twin

    def to_qdq(self, name: str | None = None) -> QuantizeDequantize:
        step, zero, count = self.step_and_zero_numpy()
        return QuantizeDequantize(
            step.astype("float32").tolist(),
            zero.astype("float32").tolist(),
            count,
            self.axis if self.channels is not None else -1,
            name=name,
        )


def _eager() -> bool:
    import tensorflow as tf

    return bool(tf.executing_eagerly())


@keras.saving.register_keras_serializable(package="aac_quant")
class QuantizeDequantize(keras.layers.Layer):
    """A fixed fake quantization (``QuantizeLinear -> DequantizeLinear``): what a stripped model quantizes its inputs with.

    Registered with Keras (``aac_quant>QuantizeDequantize``): a ``.keras`` file of a stripped model
    loads once ``aac.quant.tf`` is imported.
    """

    def __init__(self, step: Any, zero: Any, count: int, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step, self.zero, self.count, self.axis = step, zero, int(count), int(axis)

    def call(self, x: Any) -> Any:
        step = np.asarray(self.step, dtype="float32")
        zero = np.asarray(self.zero, dtype="float32")
        channels = x.shape[self.axis] if step.ndim == 1 and len(x.shape) else None
        if channels is not None and step.size > 1 and int(channels) != step.size:
            raise QuantizationError(
                f"{self.name}: per-channel input quantization of {step.size} channels gets an input of {channels}; "
                "activation quantizers do not follow filter_pruning's removal of channels yet - quantize activations "
                "per tensor (activations.per_channel: false) when mixing with filter_pruning"
            )
        if step.ndim == 1 and -self.axis - 1 > 0:
            step = step.reshape((-1,) + (1,) * (-self.axis - 1))
            zero = zero.reshape(step.shape)
        q = ops.clip(ops.round(ops.cast(x, "float32") / step) + zero, 0.0, float(self.count - 1)) - zero
        return ops.cast(q * step, x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "step": self.step, "zero": self.zero, "count": self.count, "axis": self.axis}
