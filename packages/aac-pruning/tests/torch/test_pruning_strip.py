"""Physical removal: the stripped copy computes what the masked model computes, with fewer parameters."""

import numpy as np
import onnxruntime
import pytest
import torch

from aac.core import create_compressed_model
from aac.core.hookspecs import hookimpl
from aac.core.plugins import Registry, get_plugin_manager
from aac.core.specs import AlgorithmSpec
from aac.torch.algorithm import TorchCompressionAlgorithm
from aac.torch.testing.models import Bottleneck, DenseNetLike, DigitsNet, GroupedConvNet, MobileNetLike, ResNet, SENet
from aac.torch.transforms import WeightTransform, add_transform, has_transforms, transforms_of

CASES = {
    "resnet": (lambda: ResNet(layers=(2, 2, 2)), (1, 3, 8, 8), {"prune_downsample_convs": True}),
    "resnet-first-conv": (ResNet, (1, 3, 8, 8), {"prune_downsample_convs": True, "prune_first_conv": True}),
    "bottleneck-global": (
        lambda: ResNet(Bottleneck, (1, 1), (8, 16)),
        (1, 3, 8, 8),
        {"all_weights": True, "prune_downsample_convs": True, "filters_multiple_of": 2},
    ),
    "mobilenet": (MobileNetLike, (1, 3, 8, 8), {"prune_first_conv": True}),
    "densenet": (DenseNetLike, (1, 3, 8, 8), {"filters_multiple_of": 2}),
    "grouped": (GroupedConvNet, (1, 3, 8, 8), {}),
    "squeeze-excite": (SENet, (1, 3, 8, 8), {"filter_importance": "geometric_median"}),
    "digits": (DigitsNet, (1, 1, 8, 8), {"prune_downsample_convs": True, "filters_multiple_of": 4}),
}


def _randomise_norms(model):
    """Non-trivial batch-norm statistics, so that a wrongly cut norm shows in the outputs."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("rate", [0.3, 0.6])
def test_stripped_model_matches_the_masked_model(compress, case, rate):
    make, shape, params = CASES[case]
    controller = compress(_randomise_norms(make()), shape, **params)
    controller.compression_rate = min(rate, controller.maximal_compression_rate)
    masked = controller.model.eval()
    stripped = controller.strip()
    x = torch.randn(5, *shape[1:])
    with torch.no_grad():
        torch.testing.assert_close(stripped(x), masked(x), atol=1e-4, rtol=1e-4)
    full = sum(p.numel() for p in masked.parameters())
    kept = sum(p.numel() for p in stripped.parameters())
    assert kept < full
    model_table = controller.statistics()["filter_pruning"].tables[0]
    assert dict((row[0], row[2]) for row in model_table.rows)["Parameters"] == kept
    assert not has_transforms(stripped) and has_transforms(masked)


def test_stripped_layers_are_smaller_and_the_original_keeps_training(compress):
    controller = compress(ResNet(), prune_downsample_convs=True)
    controller.compression_rate = 0.5
    stripped = controller.strip()
    block = stripped.layers[1][0]
    assert (block.conv1.out_channels, block.conv1.weight.shape) == (16, (16, 16, 3, 3))
    assert block.bn1.num_features == 16 and block.bn1.running_mean.shape == (16,)
    assert stripped.fc.in_features == 32 and stripped.fc.weight.shape == (10, 32)
    model = controller.model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    optimizer.step()
    controller.compression_rate = 0.25
    assert controller.strip().layers[1][0].conv1.out_channels == 24  # stripping again follows the new level


@pytest.mark.filterwarnings("ignore::FutureWarning")  # raised inside torch.export
def test_onnx_export_runs_in_onnxruntime(compress, tmp_path):
    controller = compress(DigitsNet(width=16), (1, 1, 8, 8), prune_downsample_convs=True, filters_multiple_of=4)
    controller.compression_rate = 0.5
    path = controller.export_model(tmp_path / "digits.onnx")
    x = torch.randn(7, 1, 8, 8)
    session = onnxruntime.InferenceSession(str(path))
    (result,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = controller.model.eval()(x).numpy()
    np.testing.assert_allclose(result, expected, atol=1e-4)
    import onnx

    weights = {init.name: tuple(init.dims) for init in onnx.load(str(path)).graph.initializer}
    assert (8, 16, 3, 3) in weights.values()  # block1.conv1 lost half its filters in the file too
    assert [p.name for p in tmp_path.iterdir()] == ["digits.onnx"]


class Scale(WeightTransform):
    """Stand-in for another algorithm's per-channel transform (a quantization scale)."""

    def __init__(self, channels: int) -> None:
        super().__init__("scale_weights")
        self.register_buffer("scale", torch.linspace(0.5, 1.5, channels).view(channels, 1, 1, 1))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.scale

    def select_channels(self, axis: int, index: torch.Tensor) -> None:
        if axis == 0:
            self.scale = self.scale[index]


class ScaleWeights(TorchCompressionAlgorithm):
    """A toy second algorithm whose per-channel transforms survive its own strip (like quantizers kept for export)."""

    name = "scale_weights"

    def __init__(self, prepared, section):
        super().__init__(prepared, section)
        for module in self.model.modules():
            if isinstance(module, torch.nn.Conv2d):
                add_transform(module, "weight", Scale(module.out_channels))

    def _strip(self, model):
        return model


class ScalePlugin:
    @hookimpl
    def aac_algorithms(self):
        return [
            AlgorithmSpec(
                name="scale_weights",
                adaptive=False,
                frameworks={"torch": lambda prepared, section, config: ScaleWeights(prepared, section)},
            )
        ]


@pytest.mark.parametrize("order", [("filter_pruning", "scale_weights"), ("scale_weights", "filter_pruning")], ids="-then-".join)
def test_other_algorithms_transforms_are_cut_along(order):
    sections = {
        "filter_pruning": {"algorithm": "filter_pruning", "params": {"prune_downsample_convs": True}},
        "scale_weights": {"algorithm": "scale_weights"},
    }
    registry = Registry(get_plugin_manager(plugins=[ScalePlugin()]))
    config = {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": [sections[name] for name in order]}
    controller, model = create_compressed_model(ResNet(), config, registry=registry)
    controller.compression_rate = 0.5  # the composite's adaptive child: filter pruning
    stripped = controller.strip()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(stripped.eval()(x), model.eval()(x), atol=1e-4, rtol=1e-4)
    conv = stripped.layers[1][0].conv1
    assert [t.owner for t in transforms_of(conv, "weight")] == ["scale_weights"]
    assert conv.weight.shape == (16, 16, 3, 3) and transforms_of(conv, "weight")[0].scale.shape == (16, 1, 1, 1)
