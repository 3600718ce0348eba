"""Narrow stand-ins of the torchvision architectures NNCF's quantization configs name, for building those
configs in tests: same module names, classes and call order, so that NNCF scopes such as
``ResNet/Sequential[layer1]/BasicBlock[0]/NNCFConv2d[conv1]/conv2d_0|WEIGHT`` or
``MobileNetV2/Sequential[features]/InvertedResidual[3]/__add___0|OUTPUT`` resolve - with a few channels.

(:mod:`aac.quant.torch.testing` has the older MobileNetV2 of NNCF's documentation, ``Sequential[0]`` stem.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# torchvision's residual blocks, with its module names (downsample = Sequential(conv, bn))
from aac.torch.testing.models import BasicBlock, Bottleneck


class ResNet(nn.Module):
    """torchvision's ResNet: ``ResNet(BasicBlock, (2, 2, 2, 2))`` is ResNet-18's layout, ``(Bottleneck, (3, 4, 6, 3))`` ResNet-50's."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock,
        layers: Sequence[int] = (2, 2, 2, 2),
        width: int = 4,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = width
        for index, count in enumerate(layers):
            blocks = []
            for b in range(count):
                blocks.append(block(channels, width, 2 if index > 0 and b == 0 else 1))
                channels = width * block.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ConvBNActivation(nn.Sequential):
    """torchvision 0.9's convolution + batch norm + ReLU6 (``Conv2d[0]``, ``BatchNorm2d[1]``, ``ReLU6[2]``)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True)
        )


class Conv2dNormActivation(ConvBNActivation):
    """The same block under the name newer torchvision gives it."""


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, conv_bn: type[ConvBNActivation] = ConvBNActivation) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


#: torchvision's MobileNetV2 blocks: (expansion, channels, repeats, stride)
_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (``features[0..18]``, ``classifier[1]``) with channels divided by ``divisor`` and
    expansion capped at 2; ``conv_bn`` is the class of its convolution blocks (0.9: ``ConvBNActivation``)."""

    def __init__(
        self, num_classes: int = 10, divisor: int = 8, conv_bn: type[ConvBNActivation] = ConvBNActivation, stem_stride: int = 2
    ) -> None:
        super().__init__()
        channels = max(32 // divisor, 2)
        features: list[nn.Module] = [conv_bn(3, channels, stride=stem_stride)]
        for expand, cout, repeats, stride in _MOBILENET_V2:
            cout = max(cout // divisor, 2)
            for i in range(repeats):
                features.append(InvertedResidual(channels, cout, stride if i == 0 else 1, min(expand, 2), conv_bn))
                channels = cout
        last = max(1280 // divisor, 2)
        features.append(conv_bn(channels, last, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class MobileNetV2For32x32(MobileNetV2):
    """NNCF's CIFAR MobileNetV2 (newer torchvision blocks, a stride-1 stem)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes, conv_bn=Conv2dNormActivation, stem_stride=1)


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """torchvision's SqueezeNet 1.1 (``features[0..12]``, ``classifier[1]``) with ``width`` squeeze channels per Fire."""

    def __init__(self, num_classes: int = 10, width: int = 2) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, 8 * w, 3, 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(8 * w, w, 4 * w),
            Fire(8 * w, w, 4 * w),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(8 * w, 2 * w, 8 * w),
            Fire(16 * w, 2 * w, 8 * w),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16 * w, 3 * w, 12 * w),
            Fire(24 * w, 3 * w, 12 * w),
            Fire(24 * w, 4 * w, 16 * w),
            Fire(32 * w, 4 * w, 16 * w),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(32 * w, num_classes, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


class Inception3(nn.Module):
    """torchvision's Inception v3 input transform (the ``__mul__``/``__add__``/``cat`` operations NNCF's configs
    ignore) in front of a small convolutional body."""

    def __init__(self, num_classes: int = 10, width: int = 4) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = nn.Sequential(nn.Conv2d(3, width, 3, 2, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.Conv2d_2a_3x3 = nn.Sequential(nn.Conv2d(width, width, 3, 2, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        x = self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(torch.cat((x0, x1, x2), 1)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class ICNet(nn.Module):
    """A two-resolution segmentation net with ICNet's first operation, a downscaling ``interpolate``."""

    def __init__(self, num_classes: int = 4, width: int = 4) -> None:
        super().__init__()
        self.low = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.ReLU())
        self.high = nn.Sequential(nn.Conv2d(3, width, 3, 4, 1), nn.ReLU())
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        return self.classifier(self.low(half) + self.high(x))


class RMBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.activation = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.activation(self.conv(x))


class RMNetClassifierCifar(nn.Module):
    """RMNet's blocks (``RMBlock[i]/ELU[activation]``, which NNCF's rmnet_cifar_int8.json overrides)."""

    def __init__(self, num_classes: int = 10, width: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, 2, 1)
        self.backbone = nn.Sequential(RMBlock(width), RMBlock(width))
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class SmallNet(nn.Module):
    """Any image model for configs whose keys name no part of the architecture: two convolutions and a classifier."""

    def __init__(self, num_classes: int = 10, width: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, 4, 1), nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, width, 3, 2, 1), nn.ReLU()
        )
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))
