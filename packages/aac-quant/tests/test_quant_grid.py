"""The grid math: levels, range -> scale / zero point, and the QDQ form (NumPy only)."""

from __future__ import annotations

import numpy as np
import pytest

from aac.quant.grid import (
    MIN_RANGE,
    Levels,
    asymmetric_grid,
    asymmetric_range,
    export_grid,
    fake_quantize,
    levels,
    symmetric_grid,
    symmetric_scale,
)


@pytest.mark.parametrize(
    ("bits", "signed", "narrow", "expected"),
    [
        (8, True, False, (-128, 127)),
        (8, True, True, (-127, 127)),
        (8, False, False, (0, 255)),
        (4, True, False, (-8, 7)),
        (4, False, False, (0, 15)),
        (2, True, True, (-1, 1)),
    ],
)
def test_levels(bits: int, signed: bool, narrow: bool, expected: tuple[int, int]) -> None:
    grid = levels(bits, signed, narrow)
    assert (grid.qmin, grid.qmax) == expected
    assert grid.count == expected[1] - expected[0] + 1
    assert grid.zero_index == -expected[0]


def test_levels_reject_other_widths() -> None:
    with pytest.raises(ValueError, match="between 2 and 8"):
        levels(16, True)


def test_symmetric_scale() -> None:
    assert symmetric_scale(np.array(-3.0), np.array(2.0), signed=True) == 3.0
    assert symmetric_scale(np.array(-3.0), np.array(2.0), signed=False) == 2.0
    assert symmetric_scale(np.array(0.0), np.array(0.0), signed=True) == MIN_RANGE
    assert symmetric_scale(np.array([-1.0, 0.5]), np.array([0.5, 2.0]), True).tolist() == [1.0, 2.0]


def test_asymmetric_range_always_contains_zero() -> None:
    low, rng = asymmetric_range(np.array(0.5), np.array(2.0))
    assert (low, rng) == (0.0, 2.0)
    low, rng = asymmetric_range(np.array(-2.0), np.array(-1.0))
    assert (low, rng) == (-2.0, 2.0)


def test_symmetric_grid_step_is_scale_over_qmax() -> None:
    step, zero = symmetric_grid(np.array([1.27]), levels(8, True))
    assert step[0] == pytest.approx(0.01) and zero[0] == 128


def test_asymmetric_grid_puts_zero_on_a_level() -> None:
    step, zero = asymmetric_grid(np.array(-1.0), np.array(3.0), 256)
    assert step == pytest.approx(3.0 / 255)
    assert zero == round(1.0 / step)
    assert fake_quantize(np.array(0.0), step, zero, 256) == 0.0


def test_fake_quantize_reference_rounds_half_to_even_and_clips() -> None:
    out = fake_quantize(np.array([0.5, 1.5, 2.5, 200.0, -200.0]), np.array(1.0), np.array(128), 256)
    assert out.tolist() == [0.0, 2.0, 2.0, 127.0, -128.0]


def test_export_grid_int8_for_symmetric_signed() -> None:
    grid = export_grid(np.array(0.01), np.array(128), 256)
    assert grid.dtype == "int8" and grid.zero_point == 0 and grid.clip_low is None


def test_export_grid_narrow_range_and_fewer_bits_are_clipped() -> None:
    narrow = export_grid(np.array(0.01), np.array(127), 255)
    assert narrow.dtype == "int8" and narrow.clip_low == pytest.approx(-1.27) and narrow.clip_high == pytest.approx(1.27)
    four = export_grid(np.array([0.1, 0.2]), np.array([8, 8]), 16)
    assert (
        four.dtype == "int8"
        and four.clip_low.tolist() == pytest.approx([-0.8, -1.6])
        and four.clip_high.tolist() == pytest.approx([0.7, 1.4])
    )


def test_export_grid_uint8_for_unsigned_and_asymmetric() -> None:
    unsigned = export_grid(np.array(0.02), np.array(0), 256)
    assert unsigned.dtype == "uint8" and unsigned.zero_point == 0 and unsigned.clip_low is None
    shifted = export_grid(np.array([0.02, 0.03]), np.array([10, 200]), 256)
    assert shifted.dtype == "uint8" and shifted.zero_point.tolist() == [10, 200]
    four = export_grid(np.array(0.1), np.array(3), 16)
    assert four.dtype == "uint8" and four.clip_low == pytest.approx(-0.3) and four.clip_high == pytest.approx(1.2)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_qdq_of_the_clipped_input_equals_fake_quantization(bits: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=1000) * 3
    for grid_levels in (levels(bits, True, True), levels(bits, True), levels(bits, False)):
        step, zero = symmetric_grid(np.array(2.0), grid_levels)
        grid = export_grid(step, zero, grid_levels.count)
        storage = (-128, 127) if grid.dtype == "int8" else (0, 255)
        clipped = x if grid.clip_low is None else np.clip(x, grid.clip_low, grid.clip_high)
        q = np.clip(np.round(clipped / grid.scale) + grid.zero_point, *storage)
        assert np.allclose((q - grid.zero_point) * grid.scale, fake_quantize(x, step, zero, grid_levels.count))


def test_levels_dataclass() -> None:
    assert Levels(-3, 3).count == 7


def test_export_grid_off_centre_zero_is_uint8() -> None:
    grid = export_grid(np.array(0.01), np.array(127), 256)  # an asymmetric grid whose zero lands on 127
    assert grid.dtype == "uint8" and grid.zero_point == 127 and grid.clip_low is None
