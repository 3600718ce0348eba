"""initialize() of a composite of magnitude sparsity and quantization with HAWQ precision: the keywords only
quantization takes (``criterion=``) reach it, and its choice is the one it makes alone."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from aac.core import create_compressed_model

HAWQ = {
    "algorithm": "quantization",
    "initializer": {"precision": {"type": "hawq", "bits": [4, 8], "compression_ratio": 1.3, "iter_number": 5}},
}


def data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 16, generator=generator), torch.randn(16, 4, generator=generator)) for _ in range(4)]


def bit_widths(*sections: dict[str, Any]) -> dict[str, int]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    controller, _ = create_compressed_model(model, {"input_info": {"sample_size": [2, 16]}, "compression": list(sections)})
    controller.initialize(data(), criterion=nn.MSELoss())
    with pytest.raises(TypeError, match="criterio"):
        controller.initialize(data(), criterio=nn.MSELoss())
    quantization = controller.children[-1] if len(sections) > 1 else controller
    return quantization.bit_widths()


def test_hawq_inside_a_composite_controller() -> None:
    """Sparsity takes no ``criterion``: the composite hands it to quantization only, which then chooses as it does alone."""
    alone = bit_widths(HAWQ)
    assert set(alone.values()) == {4, 8}  # the ratio needs a mix
    assert bit_widths({"algorithm": "magnitude_sparsity", "sparsity_init": 0.1}, HAWQ) == alone
