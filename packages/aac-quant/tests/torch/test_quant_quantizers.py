"""The torch fake quantizers: values, straight-through and range gradients, fallback, state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from aac.quant.grid import fake_quantize
from aac.quant.settings import QuantizerSettings
from aac.quant.torch import quantizers
from aac.quant.torch.quantizers import AsymmetricQuantizer, SymmetricQuantizer


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def reference(q: Any, x: torch.Tensor) -> np.ndarray:
    step, zero = (t.detach().double().numpy() for t in q.step_and_zero())
    if q.channels is not None:
        shape = [1] * x.dim()
        shape[q.axis % x.dim()] = -1
        step, zero = step.reshape(shape), zero.reshape(shape)
    return fake_quantize(x.detach().double().numpy(), step, zero, q.levels.count)


@pytest.mark.parametrize(
    ("bits", "signed", "narrow"), [(8, True, False), (8, True, True), (8, False, False), (4, True, False), (3, False, False)]
)
def test_symmetric_values_match_the_reference(bits: int, signed: bool, narrow: bool) -> None:
    q = SymmetricQuantizer(QuantizerSettings(bits=bits, narrow_range=narrow), "quantization", signed=signed)
    with torch.no_grad():
        q.scale.fill_(1.5)
    x = torch.randn(64, 8) * 2
    assert np.allclose(q(x).detach().numpy(), reference(q, x), atol=1e-6)
    out = q(x).detach()
    step = 1.5 / q.levels.qmax
    assert float(out.max()) == pytest.approx(1.5) and float(out.min()) == pytest.approx(q.levels.qmin * step, abs=1e-6)


def test_asymmetric_values_and_exact_zero() -> None:
    q = AsymmetricQuantizer(QuantizerSettings(mode="asymmetric"), "quantization")
    with torch.no_grad():
        q.input_low.fill_(-0.37)
        q.input_range.fill_(2.0)
    x = torch.cat([torch.randn(200), torch.zeros(3)])
    out = q(x)
    assert np.allclose(out.detach().numpy(), reference(q, x), atol=1e-6)
    assert (out[-3:] == 0).all()


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel(axis: int) -> None:
    x = torch.randn(4, 3, 5) if axis != -1 else torch.randn(4, 6, 3)
    channels = x.shape[axis]
    for q in (
        SymmetricQuantizer(QuantizerSettings(per_channel=True), "q", channels=channels, axis=axis, signed=True),
        AsymmetricQuantizer(QuantizerSettings(mode="asymmetric", per_channel=True), "q", channels=channels, axis=axis),
    ):
        params = q.scale if isinstance(q, SymmetricQuantizer) else q.input_range
        with torch.no_grad():
            params.copy_(torch.linspace(0.5, 2.0, channels))
        assert np.allclose(q(x).detach().numpy(), reference(q, x), atol=1e-6)


def test_straight_through_input_gradient() -> None:
    q = SymmetricQuantizer(QuantizerSettings(), "q", signed=True)
    x = torch.tensor([-5.0, -0.3, 0.0, 0.7, 5.0], requires_grad=True)
    q(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_symmetric_scale_gradient_is_nncfs() -> None:
    q = SymmetricQuantizer(QuantizerSettings(), "q", signed=True)  # levels [-128, 127], scale 1
    x = torch.tensor([0.3333, 5.0, -5.0])
    for i, expected in enumerate([None, 1.0, -128 / 127]):
        q.scale.grad = None
        out = q(x)
        out[i].backward()
        if expected is None:  # inside: (fq(x) - x) / scale
            expected = float(out[i].detach() - x[i]) / 1.0
        assert float(q.scale.grad) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_asymmetric_range_and_low_gradients() -> None:
    q = AsymmetricQuantizer(QuantizerSettings(mode="asymmetric"), "q")
    with torch.no_grad():
        q.input_low.fill_(-1.0)
        q.input_range.fill_(2.55)  # step 0.01, zero index 100
    for value, d_low, d_range in ((3.0, 1.0, 1.0), (-3.0, 1.0, 0.0)):
        q.zero_grad()
        q(torch.tensor([value])).sum().backward()
        assert (float(q.input_low.grad), float(q.input_range.grad)) == pytest.approx((d_low, d_range), abs=1e-4)
    q.zero_grad()
    x = torch.tensor([0.123456])
    out = q(x)
    out.sum().backward()
    assert float(q.input_low.grad) == pytest.approx(0.0, abs=1e-6)
    assert float(q.input_range.grad) == pytest.approx(float((out - x).detach()) / 2.55, abs=1e-4)


def straight_through_reference(x: torch.Tensor, step: torch.Tensor, zero: torch.Tensor, count: int) -> torch.Tensor:
    """The same fake quantization written with autograd: clamp to the range, then round straight-through."""
    clipped = torch.clamp(x, -zero * step, (count - 1 - zero) * step)
    scaled = clipped / step + zero
    rounded = scaled + (scaled.round() - scaled).detach()
    return (rounded - zero) * step


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("learn_zero", [False, True])
def test_gradients_match_the_straight_through_reference(per_channel: bool, learn_zero: bool) -> None:
    x = (torch.randn(6, 4, 3, 3) * 2).requires_grad_(True)
    shape = (1, 4, 1, 1) if per_channel else (1,)
    step = torch.full(shape, 0.03).add_(torch.rand(shape) * 0.01).requires_grad_(True)
    zero = torch.full(shape, 100.0).requires_grad_(learn_zero)
    weights = torch.randn_like(x)
    dims = (0, 2, 3) if per_channel else None
    (quantizers._FakeQuantize.apply(x, step, zero, 256, dims) * weights).sum().backward()
    fast = [x.grad.clone(), step.grad.clone(), zero.grad.clone() if learn_zero else None]
    for t in (x, step, zero):
        t.grad = None
    out = straight_through_reference(x, step, zero, 256)
    (out * weights).sum().backward()
    assert torch.allclose(fast[0], x.grad)
    assert torch.allclose(fast[1], step.grad, rtol=1e-4, atol=1e-3)
    if learn_zero:
        assert torch.allclose(fast[2], zero.grad, rtol=1e-4, atol=1e-5)


def test_non_float32_inputs_keep_their_dtype() -> None:
    q = SymmetricQuantizer(QuantizerSettings(), "q", signed=True)
    out = q(torch.randn(5, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16


def test_signedness_and_initialization_come_back_with_the_state_dict() -> None:
    q = SymmetricQuantizer(QuantizerSettings(), "q", signed=False)
    q.set_signed(True)
    q.mark_initialized()
    with torch.no_grad():
        q.scale.fill_(3.0)
    fresh = SymmetricQuantizer(QuantizerSettings(), "q", signed=False)
    fresh.load_state_dict(q.state_dict())
    assert fresh.signed and fresh.is_initialized and (fresh.levels.qmin, fresh.levels.qmax) == (-128, 127)
    x = torch.randn(10)
    assert torch.equal(fresh(x), q(x))


def test_export_form_computes_the_same_values() -> None:
    for q in (
        SymmetricQuantizer(QuantizerSettings(narrow_range=True, bits=5), "q", signed=True),
        AsymmetricQuantizer(QuantizerSettings(mode="asymmetric", per_channel=True), "q", channels=3, axis=1),
        SymmetricQuantizer(QuantizerSettings(per_channel=True), "q", channels=3, axis=1, signed=False),
    ):
        x = torch.randn(8, 3, 4) * 3
        for p in q.parameters():
            with torch.no_grad():
                p.add_(0.3)
        qdq = q.to_qdq()
        assert torch.allclose(qdq(x), q(x).detach(), atol=1e-6)
