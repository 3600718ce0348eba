"""const_sparsity: a fixed pattern from the weights' zeros or from a magnitude-sparsity checkpoint."""

from __future__ import annotations

import pytest
import torch

from aac.core import CompressionStage, create_compressed_model
from aac.core.errors import CompressionRateError
from aac.sparsity.torch.const import ConstSparsity
from aac.torch.testing.digits import DigitsCNN

SHAPE = {"sample_size": [1, 1, 8, 8]}


def test_masks_start_from_the_zero_weights_and_never_change() -> None:
    torch.manual_seed(0)
    model = DigitsCNN()
    with torch.no_grad():
        model.fc.weight[:, :100] = 0
    controller, model = create_compressed_model(model, {"input_info": SHAPE, "compression": {"algorithm": "const_sparsity"}})
    assert isinstance(controller, ConstSparsity) and not controller.adaptive
    assert controller.compression_stage() == CompressionStage.FULLY_COMPRESSED
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        controller.scheduler.epoch_step()
        loss = model(torch.randn(8, 1, 8, 8)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (model.fc.weight[:, :100] == 0).all()
    assert controller.statistics()["const_sparsity"].scalars["sparsity_level"] == pytest.approx(
        1000 / sum(layer.numel for layer in controller.layers)
    )
    with pytest.raises(CompressionRateError):
        controller.compression_rate = 0.5
    with pytest.raises(CompressionRateError):
        _ = controller.compression_rate


def test_magnitude_checkpoint_loads_into_const_sparsity() -> None:
    torch.manual_seed(0)
    magnitude_model = DigitsCNN()
    magnitude, _ = create_compressed_model(
        magnitude_model, {"input_info": SHAPE, "compression": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}}
    )
    weights = magnitude_model.state_dict()
    const_model = DigitsCNN()
    const, _ = create_compressed_model(const_model, {"input_info": SHAPE, "compression": {"algorithm": "const_sparsity"}})
    const_model.load_state_dict(weights)
    assert const.measured_level() == pytest.approx(magnitude.measured_level())
    x = torch.randn(2, 1, 8, 8)
    magnitude_model.eval()
    const_model.eval()
    assert torch.equal(const_model(x), magnitude_model(x))
    stripped = const.strip()
    assert int((stripped.fc.weight == 0).sum()) == int((magnitude_model.fc.weight == 0).sum())
