"""A toy torch algorithm registered through a plugin object, so aac-torch's tests need no algorithm package."""

import pytest
import torch

from aac.core.hookspecs import hookimpl
from aac.core.plugins import Registry, get_plugin_manager
from aac.core.specs import AlgorithmSpec
from aac.torch.algorithm import TorchCompressionAlgorithm
from aac.torch.transforms import Mask, add_transform

# the test models are tiny: extra threads only add synchronisation, which costs a lot on a busy CI machine
torch.set_num_threads(1)


class HalveWeights(TorchCompressionAlgorithm):
    """Every selected convolution sees half its weights."""

    name = "halve_weights"

    def __init__(self, prepared, section):
        super().__init__(prepared, section)
        for path, module in self.model.named_modules():
            if isinstance(module, torch.nn.Conv2d) and self.is_selected(path):
                add_transform(module, "weight", Mask(torch.full((1,), 0.5), self.name))


class ToyTorchPlugin:
    @hookimpl
    def aac_algorithms(self):
        return [
            AlgorithmSpec(
                name="halve_weights",
                adaptive=False,
                frameworks={"torch": lambda prepared, section, config: HalveWeights(prepared, section)},
            )
        ]


@pytest.fixture(scope="session")
def registry():
    """Installed plugins (core, aac-torch) plus the toy algorithm."""
    return Registry(get_plugin_manager(plugins=[ToyTorchPlugin()]))
