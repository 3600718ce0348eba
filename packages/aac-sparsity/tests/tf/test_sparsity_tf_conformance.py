"""aac-core's conformance suite for the sparsity algorithms on Keras."""

import pytest

from aac.core.testing import AdaptiveConformance, CompressionConformance
from aac.tf.testing import TFHarness


@pytest.fixture
def framework() -> TFHarness:
    return TFHarness()


class TestMagnitudeSparsity(AdaptiveConformance):
    section = {"algorithm": "magnitude_sparsity"}


class TestConstSparsity(CompressionConformance):
    section = {"algorithm": "const_sparsity"}
