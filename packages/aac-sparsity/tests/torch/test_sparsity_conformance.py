"""aac-core's conformance suite for the sparsity algorithms on PyTorch."""

import pytest

from aac.core.testing import AdaptiveConformance, CompressionConformance
from aac.torch.testing.conformance import TorchHarness


@pytest.fixture
def framework() -> TorchHarness:
    return TorchHarness()


class TestMagnitudeSparsity(AdaptiveConformance):
    section = {"algorithm": "magnitude_sparsity"}


class TestConstSparsity(CompressionConformance):
    section = {"algorithm": "const_sparsity"}
