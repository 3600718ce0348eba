"""NNCF 2.17's configs whose scopes name operations and NNCF's wrapper modules build on models of the same shape.

The models below are small versions of NNCF's sample models, written here with the module paths and the
operations those configs name: torchvision's Inception3 with its input transform (three ``x[:, i]``,
``unsqueeze``, ``*`` and ``+``, then ``cat``, at the model's root), NNCF's ICNet (its first
``F.interpolate`` at the root), torchvision's MobileNetV2 (``features[0]`` a ``Conv2dNormActivation``),
NNCF's UNet (``up_path[i].up``, a transposed convolution) and torchvision's ResNet-18. Each config's
compression section is the one of the NNCF file named in its test id, with smaller inputs.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from aac.core import ConfigError, create_compressed_model
from aac.torch.transforms import transforms_of

INCEPTION_IGNORED = [
    "Inception3/__add___0",
    "Inception3/__add___1",
    "Inception3/__add___2",
    "Inception3/__mul___0",
    "Inception3/__mul___1",
    "Inception3/__mul___2",
    "Inception3/cat_0",
]


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception3(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 8, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(8, 8, kernel_size=3)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        x = torch.cat((x_ch0, x_ch1, x_ch2), 1)
        x = F.max_pool2d(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)), kernel_size=3, stride=2)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ICNet(nn.Module):
    def __init__(self, size: int = 32, classes: int = 4) -> None:
        super().__init__()
        self.size = size
        self.highres_conv = ConvBNReLU(3, 8, stride=2)
        self.mediumres_conv = ConvBNReLU(3, 8, stride=1)
        self.conv6_cls = nn.Conv2d(8, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        high = self.highres_conv(x)
        medium = self.mediumres_conv(F.interpolate(x, (self.size // 2, self.size // 2), mode="nearest"))
        return F.interpolate(self.conv6_cls(high + medium), (self.size, self.size), mode="nearest")


class Conv2dNormActivation(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True)
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        hidden = 2 * cin
        self.use_res_connect = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            Conv2dNormActivation(cin, hidden, kernel=1),
            Conv2dNormActivation(hidden, hidden, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(Conv2dNormActivation(3, 8, stride=2), InvertedResidual(8, 8, 1), InvertedResidual(8, 16, 2))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), (1, 1)), 1))


class MobileNetV2For32x32(MobileNetV2):
    """NNCF's CIFAR variant: the same modules under another class name."""


class UNetConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UNetUpBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2)
        self.conv_block = UNetConvBlock(2 * cout, cout)

    def forward(self, x: torch.Tensor, bridge: torch.Tensor) -> torch.Tensor:
        up = self.up(x)
        crop = bridge[:, :, : up.shape[2], : up.shape[3]]
        return self.conv_block(torch.cat([up, crop], 1))


class UNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (8, 16, 16, 16, 16), classes: int = 4) -> None:
        super().__init__()
        self.down_path = nn.ModuleList(UNetConvBlock(cin, cout) for cin, cout in zip((3, *widths[:-1]), widths, strict=True))
        self.up_path = nn.ModuleList(UNetUpBlock(cin, cout) for cin, cout in zip(widths[:0:-1], widths[-2::-1], strict=True))
        self.last = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bridges = []
        for i, down in enumerate(self.down_path):
            x = down(x)
            if i != len(self.down_path) - 1:
                bridges.append(x)
                x = F.max_pool2d(x, 2)
        for i, up in enumerate(self.up_path):
            x = up(x, bridges[-i - 1])
        return self.last(x)


class ResNet(nn.Module):
    """torchvision's ResNet-18 module names, one small block per stage."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(Block(8, 8, 1))
        self.layer2 = nn.Sequential(Block(8, 16, 2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn1(self.conv1(x)) + identity)


RB_SPARSITY = {
    "algorithm": "rb_sparsity",
    "sparsity_init": 0.01,
    "params": {"sparsity_target": 0.61, "sparsity_target_epoch": 5, "sparsity_freeze_epoch": 10},
}
UNET_IGNORED = [
    *(f"{{re}}UNet/ModuleList\\[up_path\\]/UNetUpBlock\\[{i}\\]/NNCFConvTranspose2d\\[up\\].*" for i in range(4)),
    *(
        f"{{re}}UNet/ModuleList\\[up_path\\]/UNetUpBlock\\[3\\]/UNetConvBlock\\[conv_block\\]/Sequential\\[block\\]/NNCFConv2d\\[{i}\\].*"
        for i in (0, 3)
    ),
]

#: id (the NNCF file) -> (model class, input size, compression section(s))
CASES: dict[str, tuple[type[nn.Module], int, Any]] = {
    "quantization/inception_v3_imagenet_int8": (
        Inception3,
        32,
        {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 4}}, "ignored_scopes": INCEPTION_IGNORED},
    ),
    "sparsity_quantization/inception_v3_imagenet_rb_sparsity_int8": (
        Inception3,
        32,
        [RB_SPARSITY, {"algorithm": "quantization", "ignored_scopes": INCEPTION_IGNORED}],
    ),
    "semantic_segmentation/icnet_camvid_int8": (ICNet, 32, {"algorithm": "quantization", "ignored_scopes": ["ICNet/interpolate_0"]}),
    "semantic_segmentation/icnet_camvid_magnitude_sparsity_int8": (
        ICNet,
        32,
        [
            {
                "algorithm": "magnitude_sparsity",
                "sparsity_init": 0.1,
                "params": {"schedule": "multistep", "multistep_steps": [5, 10], "multistep_sparsity_levels": [0.1, 0.2, 0.3]},
            },
            {"algorithm": "quantization", "ignored_scopes": ["ICNet/interpolate_0"]},
        ],
    ),
    "sparsity_quantization/mobilenet_v2_imagenet_rb_sparsity_int8": (
        MobileNetV2,
        32,
        [
            {
                **RB_SPARSITY,
                "ignored_scopes": ["{re}MobileNetV2/Sequential\\[features\\]/Conv2dNormActivation\\[0\\]/NNCFConv2d\\[0\\]/.*"],
            },
            {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 4, "type": "min_max"}}},
        ],
    ),
    "weekly/cifar100/mobilenet_v2_rb_sparsity_int8": (
        MobileNetV2For32x32,
        32,
        [
            {
                "algorithm": "rb_sparsity",
                "params": {
                    "schedule": "multistep",
                    "multistep_steps": [16, 24],
                    "multistep_sparsity_levels": [0.1, 0.2, 0.52],
                    "sparsity_freeze_epoch": 45,
                },
                "ignored_scopes": ["MobileNetV2For32x32/Sequential[features]/Conv2dNormActivation[0]/NNCFConv2d[0]/conv2d_0"],
            },
            {"algorithm": "quantization"},
        ],
    ),
    "semantic_segmentation/unet_mapillary_pruning_geometric_median": (
        UNet,
        32,
        [
            {
                "algorithm": "filter_pruning",
                "pruning_init": 0.05,
                "ignored_scopes": UNET_IGNORED,
                "params": {
                    "schedule": "exponential",
                    "pruning_target": 0.25,
                    "pruning_steps": 10,
                    "filter_importance": "geometric_median",
                    "filters_multiple_of": 1,
                },
            }
        ],
    ),
    "resnet18_cifar10_staged_quant (its scopes)": (
        ResNet,
        16,
        [
            {
                "algorithm": "quantization",
                "ignored_scopes": [
                    "ResNet/NNCFConv2d[conv1]/conv2d_0",
                    "ResNet/NNCFLinear[fc]/linear_0",
                    "ResNet/Sequential[layer2]/Block[0]/Sequential[downsample]/NNCFConv2d[0]/conv2d_0",
                ],
            }
        ],
    ),
}


def build(case: str) -> tuple[Any, nn.Module]:
    model_class, size, compression = CASES[case]
    torch.manual_seed(0)
    model = model_class()
    controller, compressed = create_compressed_model(model, {"input_info": {"sample_size": [2, 3, size, size]}, "compression": compression})
    compressed(torch.rand(2, 3, size, size))
    return controller, compressed


def part(controller: Any, name: str) -> Any:
    return next(c for c in getattr(controller, "children", [controller]) if c.name == name)


def quantized_weights(model: nn.Module) -> set[str]:
    return {path for path, m in model.named_modules() if any(t.owner == "quantization" for t in transforms_of(m, "weight"))}


@pytest.mark.parametrize("case", list(CASES))
def test_the_config_builds(case: str) -> None:
    build(case)


@pytest.mark.parametrize(
    "case", ["quantization/inception_v3_imagenet_int8", "sparsity_quantization/inception_v3_imagenet_rb_sparsity_int8"]
)
def test_inception_input_transform_operations_are_ignored_not_the_model(case: str) -> None:
    controller, model = build(case)
    quantization = part(controller, "quantization")
    assert quantization.section_scopes.ignored.roots == frozenset()  # no module, least of all the model itself
    assert quantization.section_scopes.ignored.operations == {"add", "add_1", "add_2", "mul", "mul_1", "mul_2", "cat"}
    assert quantized_weights(model) == {"Conv2d_1a_3x3.conv", "Conv2d_2a_3x3.conv", "fc"}


def test_icnet_first_interpolate_is_an_operation() -> None:
    controller, model = build("semantic_segmentation/icnet_camvid_int8")
    ignored = controller.section_scopes.ignored
    assert ignored.roots == frozenset() and ignored.operations == {"interpolate"}  # the first of two
    assert quantized_weights(model) == {"highres_conv.0", "mediumres_conv.0", "conv6_cls"}


@pytest.mark.parametrize(
    "case", ["sparsity_quantization/mobilenet_v2_imagenet_rb_sparsity_int8", "weekly/cifar100/mobilenet_v2_rb_sparsity_int8"]
)
def test_mobilenet_first_convolution_through_nncf_wrapper_names(case: str) -> None:
    controller, _ = build(case)
    assert part(controller, "rb_sparsity").section_scopes.ignored.roots == {"features.0.0"}


def test_unet_upsampling_convolutions_through_a_regex_on_nncf_names() -> None:
    controller, _ = build("semantic_segmentation/unet_mapillary_pruning_geometric_median")
    ignored = controller.section_scopes.ignored
    assert ignored.roots == {*(f"up_path.{i}.up" for i in range(4)), "up_path.3.conv_block.block.0", "up_path.3.conv_block.block.3"}
    assert ignored.operations == frozenset()


def test_resnet_wrapped_convolution_and_linear() -> None:
    controller, model = build("resnet18_cifar10_staged_quant (its scopes)")
    assert controller.section_scopes.ignored.roots == {"conv1", "fc", "layer2.0.downsample.0"}
    assert quantized_weights(model) == {"layer1.0.conv1", "layer2.0.conv1"}


def test_an_operation_that_does_not_exist_keeps_the_error_with_suggestions() -> None:
    config = {"compression": {"algorithm": "quantization", "ignored_scopes": ["Inception3/__add___3"]}}
    with pytest.raises(ConfigError) as info:
        create_compressed_model(Inception3(), config)
    (problem,) = info.value.problems
    assert problem.path == "$.compression.ignored_scopes"
    assert problem.message.startswith(
        "'Inception3/__add___3' matches no module of the model; closest module or operation names: "
        "'Inception3/__add___2', 'Inception3/__add___1', 'Inception3/__add___0'"
    )
