"""Reference architectures built in code (no torchvision), for tests, benchmarks and examples.

Each reproduces the structure that matters to structured compression - residual additions,
depthwise and grouped convolutions, concatenation, squeeze-and-excitation gates, channels-last
blocks with layer norms and layer scales, attention, channel shuffles - at any size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from aac.torch.attention import AttentionSpec, Projection, register_attention


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


# ------------------------------------------------------------------------------------------
# modern architectures (issue 14): the patterns of torchvision's ResNeXt, RegNet, EfficientNet,
# ConvNeXt, ViT, Swin and ShuffleNet at toy size, for 8x8 inputs
# ------------------------------------------------------------------------------------------


class SqueezeExcitation(nn.Module):
    """torchvision's ``SqueezeExcitation``: pool, two 1x1 convolutions, a sigmoid gate multiplied in."""

    def __init__(self, channels: int, squeezed: int, activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(self.activation(self.fc1(scale))))


class GroupedBottleneck(nn.Module):
    """ResNeXt's bottleneck (1x1, grouped 3x3, 1x1) and, with ``se_channels``, RegNet's (an SE gate after the grouped conv)."""

    def __init__(self, cin: int, cout: int, width: int, groups: int, stride: int = 1, se_channels: int = 0) -> None:
        super().__init__()
        self.a = conv_bn(cin, width, 1)
        self.b = conv_bn(width, width, 3, stride, groups=groups)
        self.se = SqueezeExcitation(width, se_channels) if se_channels else nn.Identity()
        self.c = conv_bn(width, cout, 1, act=False)
        self.proj = conv_bn(cin, cout, 1, stride, act=False) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.relu(shortcut + self.c(self.se(self.b(self.a(x)))))


class ResNeXtLike(nn.Module):
    """Two grouped bottlenecks (the second downsamples); ``se_channels`` makes them RegNet-Y blocks."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, groups: int = 4, se_channels: int = 0) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, 16, 3)
        self.blocks = nn.Sequential(
            GroupedBottleneck(16, 32, 16, groups, 1, se_channels), GroupedBottleneck(32, 32, 32, groups, 2, se_channels)
        )
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


def stochastic_depth(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """torchvision's row-mode stochastic depth: drop whole samples of a residual branch while training."""
    if not training or p == 0.0:
        return x
    noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(1.0 - p)
    return x * noise.div_(1.0 - p)


class StochasticDepth(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.training)


class MBConv(nn.Module):
    """EfficientNet's block: expansion, depthwise conv, SE with SiLU, projection, stochastic depth on the residual."""

    def __init__(self, channels: int, expand: int = 4, p: float = 0.2) -> None:
        super().__init__()
        hidden = channels * expand
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
        self.se = SqueezeExcitation(hidden, channels // 4, nn.SiLU)
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.stochastic_depth = StochasticDepth(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.stochastic_depth(self.project(self.se(self.depthwise(self.expand(x)))))


class EfficientNetLike(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU())
        self.blocks = nn.Sequential(MBConv(16), MBConv(16))
        self.head = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.SiLU())
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.head(self.blocks(self.stem(x))), 1), 1))


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ``LayerNorm2d``: a layer norm over the channels of ``NCHW``, by permuting around ``F.layer_norm``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 conv, channels-last layer norm and MLP, a learned layer scale, stochastic depth."""

    def __init__(self, dim: int, layer_scale: float = 0.5) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale))
        self.stochastic_depth = StochasticDepth(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.fc2(nn.functional.gelu(self.fc1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + self.stochastic_depth(self.layer_scale * y)


class ConvNeXtLike(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, dims: Sequence[int] = (16, 32)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], 2, 2), LayerNorm2d(dims[0], eps=1e-6))
        self.stage1 = ConvNeXtBlock(dims[0])
        self.downsample = nn.Sequential(LayerNorm2d(dims[0], eps=1e-6), nn.Conv2d(dims[0], dims[1], 2, 2))
        self.stage2 = ConvNeXtBlock(dims[1])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), LayerNorm2d(dims[1], eps=1e-6), nn.Flatten(1), nn.Linear(dims[1], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage2(self.downsample(self.stage1(self.stem(x)))))


class EncoderBlock(nn.Module):
    """torchvision's ViT encoder block: pre-norm ``nn.MultiheadAttention`` and MLP, each on a residual."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class ViTLike(nn.Module):
    """Patches, a class token and a position embedding, two encoder blocks, the class token classified."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, dim: int = 32, heads: int = 4, patch: int = 2, image: int = 8) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(in_channels, dim, patch, patch)
        self.class_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embedding = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.layers = nn.Sequential(EncoderBlock(dim, heads), EncoderBlock(dim, heads))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        return self.head(self.ln(self.layers(x))[:, 0])


class WindowAttention(nn.Module):
    """Swin's window attention, written functionally on the layer's own weights (``F.linear(x, self.qkv.weight, ...)``)
    with a relative position bias per head; registered with :func:`aac.torch.attention.register_attention` below."""

    def __init__(self, dim: int, heads: int, window: int = 2) -> None:
        super().__init__()
        self.num_heads = heads
        self.window_size = window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("relative_position_index", relative[..., 0] * (2 * window - 1) + relative[..., 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        s, heads = self.window_size, self.num_heads
        windows = x.view(b, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s * s, c)
        qkv = nn.functional.linear(windows, self.qkv.weight, self.qkv.bias)
        qkv = qkv.reshape(windows.shape[0], s * s, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        bias = self.relative_position_bias_table[self.relative_position_index].permute(2, 0, 1)
        attention = torch.softmax((q * (c // heads) ** -0.5) @ k.transpose(-2, -1) + bias, dim=-1)
        out = (attention @ v).transpose(1, 2).reshape(windows.shape[0], s * s, c)
        out = nn.functional.linear(out, self.proj.weight, self.proj.bias)
        return out.view(b, h // s, w // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def _window_geometry(layer: nn.Module, query: Sequence[int], key: Sequence[int]) -> tuple[float, float, float]:
    tokens = float(query[-3] * query[-2])
    return tokens, tokens, float(layer.window_size**2)


register_attention(
    WindowAttention,
    AttentionSpec(
        qkv=Projection("qkv"), out=Projection("proj"), geometry=_window_geometry, head_tensors={"relative_position_bias_table": 1}
    ),
)


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.stochastic_depth = StochasticDepth(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Swin's downsampling: the four 2x2 phases joined along the channels, a layer norm, a linear reduction."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x))


class SwinLike(nn.Module):
    """Channels-last stages of window-attention blocks joined by patch merging (for 8x8 inputs)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.patch = nn.Conv2d(in_channels, dim, 2, 2)
        self.norm0 = nn.LayerNorm(dim)
        self.stage1 = SwinBlock(dim, heads)
        self.merge = PatchMerging(dim)
        self.stage2 = SwinBlock(2 * dim, 2 * heads)
        self.norm = nn.LayerNorm(2 * dim)
        self.head = nn.Linear(2 * dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm0(self.patch(x).permute(0, 2, 3, 1))
        x = self.norm(self.stage2(self.merge(self.stage1(x))))
        return self.head(x.permute(0, 3, 1, 2).mean((2, 3)))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.size()
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit: split (or, downsampling, two branches), 1x1 / depthwise 3x3 / 1x1, concatenate, shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        branch_in = cin if stride > 1 else half
        self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin, act=False), conv_bn(cin, half, 1)) if stride > 1 else None
        self.branch2 = nn.Sequential(
            conv_bn(branch_in, half, 1), conv_bn(half, half, 3, stride, groups=half, act=False), conv_bn(half, half, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            kept, x = x.chunk(2, dim=1)
            out = torch.cat([kept, self.branch2(x)], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetLike(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, 16, 3)
        self.units = nn.Sequential(ShuffleUnit(16, 32, 2), ShuffleUnit(32, 32, 1))
        self.head = conv_bn(32, 64, 1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.units(self.stem(x))).mean((2, 3)))


#: issue 14's modern-architecture patterns, small (input ``[N, 3, 8, 8]``): one place for the pruning
#: tests, the quantization cross test and ``benchmarks/architectures.py``
ARCHITECTURE_PATTERNS: dict[str, Callable[[], nn.Module]] = {
    "resnext": ResNeXtLike,
    "regnet": lambda: ResNeXtLike(se_channels=4),
    "efficientnet": EfficientNetLike,
    "convnext": ConvNeXtLike,
    "vit": ViTLike,
    "swin": SwinLike,
    "shufflenet": ShuffleNetLike,
}
