"""Fake quantizers with learnable ranges, and the fixed QDQ form they take when stripped.

Training (:class:`SymmetricQuantizer`, :class:`AsymmetricQuantizer`) goes through one autograd
function, :class:`_FakeQuantize`: a handful of vectorised passes forward and backward,
straight-through for the input inside the range, NNCF's gradients for the range parameters. It
rounds exactly as ONNX's QuantizeLinear does, so the exported model computes what was trained.

Only small tensors (the per-channel step and zero point) are derived from the parameters at each
call; nothing of the input's size is kept besides the input and the output.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from aac.quant.grid import MIN_RANGE, ExportGrid, Levels, export_grid, levels
from aac.quant.ranges import Collection, RangeCollector, initialize_from_first_batch
from aac.quant.settings import ASYMMETRIC, QuantizerSettings, RangeSettings
from aac.torch.transforms import WeightTransform


class _FakeQuantize(torch.autograd.Function):
    """Fake quantization with NNCF's gradients, in a few vectorised passes.

    Forward: ``(clip(round(x / step) + zero, 0, count - 1) - zero) * step`` (round first, then the
    integer zero: exactly what ONNX's QuantizeLinear/DequantizeLinear compute). ``step`` and ``zero``
    broadcast against ``x`` (one element, or one per channel).

    Backward: ``x`` gets the gradient inside ``[low, high]`` (straight-through), zero outside;
    ``step`` gets ``(fq(x) - x) / step`` inside and ``fq(x) / step`` outside, ``zero`` gets
    ``-step`` outside (NNCF's and LSQ's gradients for this parameterisation). Both reduce to dot
    products: ``d step = (g . fq(x) - g_in . x) / step`` and ``d zero = -(sum g - sum g_in) step``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        step: torch.Tensor,
        zero: torch.Tensor,
        count: int,  # type: ignore[override]
        dims: tuple[int, ...] | None,
    ) -> torch.Tensor:
        out = x * (1.0 / step)
        out.round_().add_(zero).clamp_(0, count - 1).sub_(zero).mul_(step)
        ctx.save_for_backward(x, out, step, zero)
        ctx.count, ctx.dims = count, dims
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, out, step, zero = ctx.saved_tensors
        grad = grad.contiguous()
        dims = ctx.dims
        low, high = -zero * step, (ctx.count - 1 - zero) * step
        if dims is None and x.device.type == "cpu":  # clamp to tensor bounds is a broadcast, 5x slower on a CPU than
            low, high = float(low), float(high)  # to numbers; reading them is free there (on a GPU it would sync)
        grad_in = grad * (torch.clamp(x, low, high) == x)
        d_step = d_zero = None
        if dims is None:  # per tensor: dot products, no temporaries
            if ctx.needs_input_grad[1]:
                d_step = ((_dot(grad, out) - _dot(grad_in, x)) / step).reshape(step.shape)
            if ctx.needs_input_grad[2]:
                d_zero = ((grad_in.sum() - grad.sum()) * step).reshape(zero.shape)
        else:
            if ctx.needs_input_grad[1]:
                d_step = ((grad * out).sum(dims, keepdim=True) - (grad_in * x).sum(dims, keepdim=True)) / step
            if ctx.needs_input_grad[2]:
                d_zero = (grad_in.sum(dims, keepdim=True) - grad.sum(dims, keepdim=True)) * step
        return grad_in, d_step, d_zero, None, None


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.dot(a.reshape(-1), b.reshape(-1))


class _ChannelCuts:
    """Lets a weight quantizer follow structured pruning (:meth:`WeightTransform.select_channels`).

    A cut along the quantizer's own channel axis cuts its per-channel state; a cut along the weight's
    input axis cuts the per-channel state of the layer's *input* quantizer (its "partner"), which
    quantizes exactly those channels. The partner is referenced outside ``_modules`` (it is a child
    of the layer already), and cut once even when several layers share it.
    """

    input_axis: int | None = None

    @property
    def input_partner(self) -> nn.Module | None:
        return self.__dict__.get("_input_partner")

    def link_input_partner(self, partner: nn.Module, axis: int | None = None) -> None:
        self.__dict__["_input_partner"] = partner
        if axis is not None:
            self.input_axis = axis

    def select_channels(self, axis: int, index: torch.Tensor) -> None:
        own_axis = getattr(self, "axis", None)
        if getattr(self, "channels", None) is not None and own_axis is not None and own_axis == axis:
            self._cut_own(index)
        partner = self.input_partner
        if axis == self.input_axis and partner is not None and partner.channels is not None and partner.channels != len(index):
            partner._cut_own(index)

    def _cut_own(self, index: torch.Tensor) -> None:
        raise NotImplementedError


def _cut_tensor(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    picked = tensor.detach().index_select(0, index.to(tensor.device)).clone()
    return nn.Parameter(picked, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else picked


def _broadcast_shape(count: int, axis: int, ndim: int) -> list[int]:
    shape = [1] * ndim
    shape[axis] = count
    return shape


class FakeQuantizer(_ChannelCuts, WeightTransform):
    """Base of the learnable quantizers: grid bookkeeping, the kernel call, signedness and state.

    :param settings: the group's settings (mode, bits, signedness, per channel).
    :param channels: number of channels for a per-channel quantizer (None: per tensor).
    :param axis: the channel axis of the quantized tensor (negative counts from the end).
    :param signed: signedness to start with (symmetric mode; decided later by range init when the
        settings leave it open).
    """

    mode: ClassVar[str] = ""

    def __init__(
        self,
        settings: QuantizerSettings,
        owner: str,
        channels: int | None = None,
        axis: int = 0,
        signed: bool = False,
        device: torch.device | None = None,
    ) -> None:
        super().__init__(owner)
        self.settings = settings
        self.axis = axis
        self.channels = channels
        size = channels if channels is not None else 1
        self._size = size
        self.register_buffer("grid_levels", torch.zeros(2, dtype=torch.int64, device=device))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool, device=device))
        self.register_buffer("_zero", torch.zeros(size, device=device), persistent=False)
        self.levels: Levels = Levels(0, 1)
        self._is_initialized = False
        #: statistics being collected (``initialize``): the forward then observes and passes the input through
        self.collection: Collection | None = None
        #: range settings for initializing from the first batch seen, if ``initialize`` was never called
        self.lazy_range: RangeSettings | None = None
        #: where the quantizer sits, for messages and statistics
        self.label = ""
        #: False passes the input through (staged quantization before the group's start epoch)
        self.enabled = True
        self._set_levels(self._levels_for(signed))

    # -- grid ------------------------------------------------------------------------------
    def _levels_for(self, signed: bool) -> Levels:
        raise NotImplementedError

    @property
    def signed(self) -> bool:
        return self.levels.qmin < 0

    def _set_levels(self, grid: Levels) -> None:
        self.levels = grid
        with torch.no_grad():
            self.grid_levels.copy_(torch.tensor([grid.qmin, grid.qmax]))
            self._zero.fill_(float(grid.zero_index))

    def set_signed(self, signed: bool) -> None:
        """Switch between a signed and an unsigned grid (symmetric quantizers)."""
        self._set_levels(self._levels_for(signed))

    def set_enabled(self, enabled: bool) -> None:
        """Switch fake quantization on or off (off: the input passes through; range statistics are still collected)."""
        self.enabled = bool(enabled)

    @property
    def bits(self) -> int:
        """The bit width of the current grid (the narrow signed range of 8 bits has 255 levels: still 8)."""
        return int(math.ceil(math.log2(self.levels.count)))

    def set_bits(self, bits: int) -> None:
        """Change the bit width (mixed precision); the range is kept, the step follows."""
        self.settings = dataclasses.replace(self.settings, bits=int(bits))
        self._set_levels(self._levels_for(self.signed))

    @property
    def is_initialized(self) -> bool:
        return self._is_initialized

    def mark_initialized(self, value: bool = True) -> None:
        self._is_initialized = value
        with torch.no_grad():
            self.initialized.fill_(value)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        qmin, qmax = (int(v) for v in self.grid_levels.tolist())
        self._set_levels(Levels(qmin, qmax))
        self.settings = dataclasses.replace(self.settings, bits=self.bits)
        self._is_initialized = bool(self.initialized.item())

    def step_and_zero(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (or 1-element) step and zero index, differentiable in the range parameters."""
        raise NotImplementedError

    def set_range(self, low: np.ndarray, high: np.ndarray) -> None:
        """Cover ``[low, high]`` (per tensor or per channel)."""
        raise NotImplementedError

    def current_range(self) -> tuple[np.ndarray, np.ndarray]:
        """The represented ``(low, high)`` per channel (NumPy), for statistics."""
        with torch.no_grad():
            step, zero = self.step_and_zero()
            step, zero = step.double().cpu().numpy(), zero.double().cpu().numpy()
        if self.channels is None:
            step, zero = step.reshape(()), zero.reshape(())
        return -zero * step + 0.0, (self.levels.count - 1 - zero) * step

    # -- range initialization ----------------------------------------------------------------
    def apply_statistics(self, collector: RangeCollector) -> None:
        low, high = collector.result()
        if self.settings.signed is None:
            self.set_signed(collector.has_negative())
        self.set_range(low, high)
        self.mark_initialized()

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.collection is not None:
            self.collection.observe(x.detach().float().cpu().numpy())
            return x
        if not self.enabled:
            return x
        if not self._is_initialized and self.lazy_range is not None:
            initialize_from_first_batch(self, x.detach().float().cpu().numpy())
        step, zero = self.step_and_zero()
        dtype = x.dtype
        if dtype != torch.float32:
            x = x.float()
        if self.channels is None:
            out = _FakeQuantize.apply(x, step, zero, self.levels.count, None)
        else:
            axis = self.axis % x.dim()
            shape = _broadcast_shape(self.channels, axis, x.dim())
            dims = tuple(d for d in range(x.dim()) if d != axis)
            out = _FakeQuantize.apply(x, step.reshape(shape), zero.reshape(shape), self.levels.count, dims)
        return out if out.dtype == dtype else out.to(dtype)

    # -- export ----------------------------------------------------------------------------
    def export_grid(self) -> ExportGrid:
        with torch.no_grad():
            step, zero = self.step_and_zero()
            step_np = step.double().cpu().numpy()
            zero_np = np.rint(zero.double().cpu().numpy()).astype(np.int64)
        if self.channels is None:
            step_np, zero_np = step_np.reshape(()), zero_np.reshape(())
        return export_grid(step_np, zero_np, self.levels.count)

    def to_qdq(self) -> QuantizeDequantize:
        """The fixed QuantizeLinear/DequantizeLinear form of this quantizer's current grid."""
        device = next(iter(self.buffers())).device
        qdq = QuantizeDequantize(self.export_grid(), self.owner, None if self.channels is None else self.axis, device)
        qdq.input_axis = self.input_axis
        return qdq

    def _cut_own(self, index: torch.Tensor) -> None:
        for name, tensor in [*self.named_parameters(recurse=False), ("_zero", self._zero)]:
            setattr(self, name, _cut_tensor(tensor, index))
        self.channels = self._size = len(index)

    def extra_repr(self) -> str:
        channels = f", channels={self.channels}, axis={self.axis}" if self.channels is not None else ""
        return f"{self.mode}, bits={self.bits}, levels=[{self.levels.qmin}, {self.levels.qmax}]{channels}"


class SymmetricQuantizer(FakeQuantizer):
    """A grid centred on zero; the learnable ``scale`` is the top of the range."""

    mode: ClassVar[str] = "symmetric"

    def __init__(
        self,
        settings: QuantizerSettings,
        owner: str,
        channels: int | None = None,
        axis: int = 0,
        signed: bool = False,
        device: torch.device | None = None,
    ) -> None:
        super().__init__(settings, owner, channels, axis, signed, device)
        self.scale = nn.Parameter(torch.ones(self._size, device=device))

    def _levels_for(self, signed: bool) -> Levels:
        return levels(self.settings.bits, signed, self.settings.narrow_range)

    def step_and_zero(self) -> tuple[torch.Tensor, torch.Tensor]:
        step = self.scale.abs().clamp_min(MIN_RANGE) / self.levels.qmax
        return step, self._zero

    @torch.no_grad()
    def set_range(self, low: np.ndarray, high: np.ndarray) -> None:
        from aac.quant.grid import symmetric_scale

        scale = symmetric_scale(low, high, self.signed)
        self.scale.copy_(torch.as_tensor(np.broadcast_to(scale, (self._size,)).copy(), dtype=self.scale.dtype))


class AsymmetricQuantizer(FakeQuantizer):
    """A grid of ``2^bits`` levels from a learnable ``input_low`` over a learnable ``input_range``;
    the zero index is rounded (straight-through) so that zero is exactly representable."""

    mode: ClassVar[str] = ASYMMETRIC

    def __init__(
        self,
        settings: QuantizerSettings,
        owner: str,
        channels: int | None = None,
        axis: int = 0,
        signed: bool = False,
        device: torch.device | None = None,
    ) -> None:
        super().__init__(settings, owner, channels, axis, False, device)
        self.input_low = nn.Parameter(torch.zeros(self._size, device=device))
        self.input_range = nn.Parameter(torch.ones(self._size, device=device))

    def _levels_for(self, signed: bool) -> Levels:
        return levels(self.settings.bits, False)

    def set_signed(self, signed: bool) -> None:
        """Asymmetric grids have no sign: the learned range places them."""

    def step_and_zero(self) -> tuple[torch.Tensor, torch.Tensor]:
        count = self.levels.count
        step = self.input_range.abs().clamp_min(MIN_RANGE) / (count - 1)
        zero = -self.input_low / step
        zero = zero + (zero.round() - zero).detach()  # straight-through rounding
        return step, zero.clamp(0, count - 1)

    @torch.no_grad()
    def set_range(self, low: np.ndarray, high: np.ndarray) -> None:
        from aac.quant.grid import asymmetric_range

        input_low, input_range = asymmetric_range(low, high)
        self.input_low.copy_(torch.as_tensor(np.broadcast_to(input_low, (self._size,)).copy(), dtype=self.input_low.dtype))
        self.input_range.copy_(torch.as_tensor(np.broadcast_to(input_range, (self._size,)).copy(), dtype=self.input_range.dtype))


def make_quantizer(
    settings: QuantizerSettings, owner: str, channels: int | None, axis: int, signed: bool, device: torch.device | None
) -> FakeQuantizer:
    cls = AsymmetricQuantizer if settings.mode == ASYMMETRIC else SymmetricQuantizer
    return cls(settings, owner, channels if settings.per_channel else None, axis, signed, device)


def _decomposed_ops() -> Any:
    """torch's ``quantized_decomposed`` operators (registered on import), which the torch.export-based
    ONNX exporter turns into QuantizeLinear/DequantizeLinear; None if this torch lacks them."""
    try:
        import torch.ao.quantization.fx._decomposed
    except ImportError:  # pragma: no cover - depends on the torch build
        return None
    return getattr(torch.ops, "quantized_decomposed", None)


_DECOMPOSED = _decomposed_ops()
_STORAGE = {"int8": (-128, 127, torch.int8), "uint8": (0, 255, torch.uint8)}


class QuantizeDequantize(_ChannelCuts, WeightTransform):
    """A fixed grid as explicit quantize -> dequantize, which ONNX exports as ``QuantizeLinear`` ->
    ``DequantizeLinear`` (preceded by a clip for grids narrower than their 8-bit storage).

    It uses torch's ``quantized_decomposed`` operators (the torch.export-based exporter, the
    default) and ``torch.fake_quantize_per_*_affine`` under the TorchScript exporter
    (``dynamo=False``); both compute the same values.
    """

    def __init__(self, grid: ExportGrid, owner: str, axis: int | None = None, device: torch.device | None = None) -> None:
        super().__init__(owner)
        self.axis = axis
        self.dtype_name = grid.dtype
        self.register_buffer("scale", torch.as_tensor(np.atleast_1d(grid.scale), dtype=torch.float32, device=device))
        self.register_buffer("zero_point", torch.as_tensor(np.atleast_1d(grid.zero_point), dtype=torch.int32, device=device))
        self.clipped = grid.clip_low is not None
        if self.clipped:
            self.register_buffer("clip_low", torch.as_tensor(np.atleast_1d(grid.clip_low), dtype=torch.float32, device=device))
            self.register_buffer("clip_high", torch.as_tensor(np.atleast_1d(grid.clip_high), dtype=torch.float32, device=device))
        # per-tensor parameters as Python numbers: the exporters write them as constants
        self._scalars = (float(self.scale[0]), int(self.zero_point[0])) if axis is None else None
        self._clip = (float(self.clip_low[0]), float(self.clip_high[0])) if axis is None and self.clipped else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qmin, qmax, storage = _STORAGE[self.dtype_name]
        tracing = torch.jit.is_tracing() or _DECOMPOSED is None
        if self.axis is None:
            assert self._scalars is not None
            scale, zero_point = self._scalars
            if self._clip is not None:
                x = torch.clamp(x, *self._clip)
            if tracing:
                return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)
            q = _DECOMPOSED.quantize_per_tensor(x, scale, zero_point, qmin, qmax, storage)
            return _DECOMPOSED.dequantize_per_tensor(q, scale, zero_point, qmin, qmax, storage)
        axis = self.axis % x.dim()
        if self.clipped:
            shape = _broadcast_shape(self.scale.numel(), axis, x.dim())
            x = torch.maximum(torch.minimum(x, self.clip_high.reshape(shape)), self.clip_low.reshape(shape))
        if tracing:
            return torch.fake_quantize_per_channel_affine(x, self.scale, self.zero_point, axis, qmin, qmax)
        q = _DECOMPOSED.quantize_per_channel(x, self.scale, self.zero_point, axis, qmin, qmax, storage)
        return _DECOMPOSED.dequantize_per_channel(q, self.scale, self.zero_point, axis, qmin, qmax, storage)

    @property
    def channels(self) -> int | None:
        return None if self.axis is None else self.scale.numel()

    def _cut_own(self, index: torch.Tensor) -> None:
        for name in ("scale", "zero_point", "clip_low", "clip_high"):
            if hasattr(self, name):
                setattr(self, name, _cut_tensor(getattr(self, name), index))

    def extra_repr(self) -> str:
        return f"{self.dtype_name}, axis={self.axis}, clipped={self.clipped}"


# -- stripped layers ------------------------------------------------------------------------------
class QuantizedWeight:
    """Mixin of a stripped layer whose ``weight`` is read through its ``aac_weight_quantizer`` (a
    :class:`QuantizeDequantize`).

    The stored weight stays a plain parameter (already on the grid); the property makes the layer
    compute with, and ONNX export as, ``DequantizeLinear(QuantizeLinear(weight))``. Unlike a
    parametrization, the class is importable, so the stripped model can be pickled (``.pt``).
    """

    @property
    def weight(self) -> torch.Tensor:
        quantizer = self._modules["aac_weight_quantizer"]  # type: ignore[attr-defined]
        stored = self._parameters["weight"]  # type: ignore[attr-defined]
        return quantizer(stored)  # type: ignore[no-any-return, misc]


class QuantizedConv1d(QuantizedWeight, nn.Conv1d):
    pass


class QuantizedConv2d(QuantizedWeight, nn.Conv2d):
    pass


class QuantizedConv3d(QuantizedWeight, nn.Conv3d):
    pass


class QuantizedConvTranspose1d(QuantizedWeight, nn.ConvTranspose1d):
    pass


class QuantizedConvTranspose2d(QuantizedWeight, nn.ConvTranspose2d):
    pass


class QuantizedConvTranspose3d(QuantizedWeight, nn.ConvTranspose3d):
    pass


class QuantizedLinear(QuantizedWeight, nn.Linear):
    pass


QUANTIZED_LAYERS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: QuantizedConv1d,
    nn.Conv2d: QuantizedConv2d,
    nn.Conv3d: QuantizedConv3d,
    nn.ConvTranspose1d: QuantizedConvTranspose1d,
    nn.ConvTranspose2d: QuantizedConvTranspose2d,
    nn.ConvTranspose3d: QuantizedConvTranspose3d,
    nn.Linear: QuantizedLinear,
    # nn.MultiheadAttention's out_proj: only read through its weight, so the plain quantized class does
    nn.modules.linear.NonDynamicallyQuantizableLinear: QuantizedLinear,
}
#: layers whose weights and inputs are quantized
QUANTIZABLE: tuple[type[nn.Module], ...] = tuple(QUANTIZED_LAYERS)


def quantize_weight_of(module: nn.Module, grid: QuantizeDequantize) -> None:
    """Make a plain (unparametrized) layer read its weight through ``grid``.

    torch's own layer classes become the importable ``Quantized*`` classes above; a user subclass
    gets a class made on the fly (it works, but a ``.pt`` of it cannot be unpickled elsewhere).
    """
    cls = type(module)
    if isinstance(module, QuantizedWeight):
        raise TypeError(f"{cls.__name__} already reads a quantized weight")
    quantized = QUANTIZED_LAYERS.get(cls) or type(f"Quantized{cls.__name__}", (QuantizedWeight, cls), {})
    module.add_module("aac_weight_quantizer", grid)
    module.__class__ = quantized
