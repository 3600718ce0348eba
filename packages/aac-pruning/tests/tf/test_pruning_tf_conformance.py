"""aac-core's conformance suite for filter pruning on Keras."""

import pytest

from aac.core.testing import AdaptiveConformance
from aac.tf.testing import TFHarness

pytestmark = pytest.mark.filterwarnings("ignore::aac.pruning.algorithm.PruningCoverageWarning")


@pytest.fixture
def framework() -> TFHarness:
    return TFHarness()


class TestFilterPruning(AdaptiveConformance):
    # single filters rather than blocks of 8, so that the small model's rates lie on a fine grid
    section = {
        "algorithm": "filter_pruning",
        "params": {"prune_first_conv": True, "prune_downsample_convs": True, "filters_multiple_of": 1},
    }
