"""Reference architectures built in code (no torchvision), for tests, benchmarks and examples.

Each reproduces the structure that matters to structured compression - residual additions,
depthwise and grouped convolutions, concatenation, squeeze-and-excitation gates - at any size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = conv_bn(cin, width, 1, stride, act=False) if stride != 1 or cin != width else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = conv_bn(cin, cout, 1, stride, act=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision-style ResNet: ``ResNet(Bottleneck, [3, 4, 6, 3])`` is ResNet-50 (25.6 M parameters)."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock,
        layers: Sequence[int] = (1, 1, 1),
        widths: Sequence[int] = (16, 32, 64),
        in_channels: int = 3,
        num_classes: int = 10,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3 if stem_stride == 1 else 7, stem_stride, 1 if stem_stride == 1 else 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem_stride > 1 else nn.Identity()
        channels = widths[0]
        stages = []
        for index, (count, width) in enumerate(zip(layers, widths, strict=True)):
            blocks = []
            for b in range(count):
                stride = 2 if index > 0 and b == 0 else 1
                blocks.append(block(channels, width, stride))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.avgpool(self.layers(x))
        return self.fc(torch.flatten(x, 1))


def resnet50(num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), (64, 128, 256, 512), 3, num_classes, stem_stride=2)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise, 1x1 projection, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            conv_bn(cin, hidden, 1),
            conv_bn(hidden, hidden, 3, stride, groups=hidden),
            conv_bn(hidden, cout, 1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetLike(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, width, 3)
        self.blocks = nn.Sequential(
            InvertedResidual(width, width, 1, 2),
            InvertedResidual(width, 2 * width, 2, 2),
            InvertedResidual(2 * width, 2 * width, 1, 2),
        )
        self.head = conv_bn(2 * width, 4 * width, 1)
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(x.mean((2, 3)))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(torch.relu(self.bn(x)))], 1)


class DenseNetLike(nn.Module):
    """DenseNet pattern: each layer concatenates its output to its input; a transition conv closes the block."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, growth: int = 8, stem: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
        self.dense = nn.Sequential(DenseLayer(stem, growth), DenseLayer(stem + growth, growth), DenseLayer(stem + 2 * growth, growth))
        channels = stem + 3 * growth
        self.norm = nn.BatchNorm2d(channels)
        self.transition = nn.Conv2d(channels, 32, 1, bias=False)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(32 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense(self.stem(x))
        x = self.pool(self.transition(torch.relu(self.norm(x))))
        return self.fc(x.view(x.size(0), -1))


class GroupedConvNet(nn.Module):
    """ResNeXt-style grouped 3x3 convolution between two plain ones."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_channels, 16, 3)
        self.conv2 = conv_bn(16, 32, 1)
        self.grouped = conv_bn(32, 32, 3, groups=4)
        self.conv3 = conv_bn(32, 32, 1)
        self.conv4 = conv_bn(32, 16, 3)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv4(self.conv3(self.grouped(self.conv2(self.conv1(x)))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * scale


class SENet(nn.Module):
    """Convolutions gated by squeeze-and-excitation (a sigmoid multiplied into the features)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_channels, 16, 3)
        self.conv2 = conv_bn(16, 32, 3)
        self.se = SqueezeExcite(32, 8)
        self.conv3 = conv_bn(32, 32, 3)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3(self.se(self.conv2(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


class DigitsNet(nn.Module):
    """Small residual CNN for 8x8 single-channel images (sklearn's digits)."""

    def __init__(self, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = conv_bn(1, width, 3)
        self.block1 = BasicBlock(width, width)
        self.block2 = BasicBlock(width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(2 * width, 2 * width)
        self.fc2 = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc2(torch.relu(self.fc1(x)))
