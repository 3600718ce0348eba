"""aac-core's conformance suite for quantization on PyTorch (not adaptive: no rate to move)."""

import pytest

from aac.core.testing import CompressionConformance
from aac.torch.testing.conformance import TorchHarness


@pytest.fixture
def framework() -> TorchHarness:
    return TorchHarness()


class TestQuantization(CompressionConformance):
    section = {"algorithm": "quantization"}
