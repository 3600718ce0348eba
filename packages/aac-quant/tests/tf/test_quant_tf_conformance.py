"""aac-core's conformance suite for quantization on Keras (not adaptive: no rate to move)."""

import pytest

from aac.core.testing import CompressionConformance
from aac.tf.testing import TFHarness


@pytest.fixture
def framework() -> TFHarness:
    return TFHarness()


class TestQuantization(CompressionConformance):
    section = {"algorithm": "quantization"}
