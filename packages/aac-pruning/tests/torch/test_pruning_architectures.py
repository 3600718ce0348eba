"""Modern architectures (issue 14): grouped convolutions, channels-last blocks, stored per-channel tensors, attention.

Each pattern of torchvision's ResNeXt, RegNet, EfficientNet, ConvNeXt, ViT, Swin and ShuffleNet, built in
code at toy size: the groups are the expected ones, the stripped model computes what the masked one does
(also as ONNX in onnxruntime), and the statistics' FLOPs and parameters are what PyTorch counts.
"""

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from aac.core.errors import CompressionRateError
from aac.pruning.algorithm import PruningCoverageWarning
from aac.torch.testing import models
from aac.torch.testing.flops import measured_flops

PRUNE_ALL = {"prune_first_conv": True, "prune_downsample_convs": True, "filters_multiple_of": 1}


def _groups(controller):
    return {g.producers: g for g in controller.analysis.groups}


def _kept(controller):
    return {p: k.reasons for k in controller.analysis.kept for p in k.producers}


def _resnext(controller):
    grouped = controller.analysis.group_of("blocks.0.b.0")
    assert (grouped.parts, grouped.block) == (4, 1)  # the grouped conv's filters go evenly per group
    assert controller.analysis.group_of("blocks.0.a.0").parts == 4  # and so do the channels it reads
    assert ("blocks.1.proj.0", "blocks.1.c.0") in _groups(controller)


def _regnet(controller):
    _resnext(controller)
    assert ("blocks.0.b.0", "blocks.0.se.fc2") in _groups(controller)  # the SE gate multiplies the grouped conv's channels


def _efficientnet(controller):
    residual = controller.analysis.group_of("blocks.0.project.0")  # stochastic depth lets the residual stream through
    assert residual.producers == ("stem.0", "blocks.0.project.0", "blocks.1.project.0")
    assert "blocks.0.depthwise.0" in controller.analysis.group_of("blocks.0.expand.0").followers


def _convnext(controller):
    stream = controller.analysis.group_of("stem.0")
    assert stream.producers == ("stem.0", "stage1.fc2")
    assert {"stem.1", "stage1.dwconv", "stage1.norm", "stage1.layer_scale", "downsample.0"} == set(stream.followers)
    assert controller.analysis.layers["stage1.layer_scale"].axis == -3
    assert ("stage1.fc1",) in _groups(controller)  # the MLP's hidden units


def _vit(controller):
    stream = controller.analysis.group_of("conv_proj")
    assert "layers.0.self_attention" in stream.producers and stream.block == 8  # whole heads of 8 channels
    assert {"class_token", "pos_embedding", "layers.0.ln_1", "ln"} <= set(stream.followers)
    assert ("layers.0.mlp.0",) in _groups(controller)


def _swin(controller):
    stream = controller.analysis.group_of("patch")
    assert stream.producers == ("patch", "stage1.attn", "stage1.mlp.2") and stream.block == 8
    assert "merge.norm" in stream.followers  # the patch merging joins four copies of the stream
    assert controller.analysis.layers["merge.reduction"].inputs.runs == ((controller.analysis.layers["patch"].outputs.runs[0],) * 4)


def _shufflenet(controller):
    # the shuffles mix the layers feeding them: one group, the same filters removed in both halves so that each half of
    # the next unit's split holds the kept channels of that half of the full tensor
    shuffled = controller.analysis.group_of("units.0.branch2.2.0")
    assert shuffled.producers == ("units.0.branch1.1.0", "units.0.branch2.2.0", "units.1.branch2.2.0") and shuffled.parts == 2
    assert ("units.1.branch2.0.0",) in _groups(controller)  # inside a branch channels are followed
    assert controller.analysis.layers["head.0"].inputs.order is not None  # the head reads shuffled channels
    assert (
        controller.statistics()["filter_pruning"]
        .tables[0]
        .title.endswith("(10 of 10 convolutions and 0 of 1 linear layers can lose filters)")
    )


#: each pattern's expected groups
CHECKS = {
    "resnext": _resnext,
    "regnet": _regnet,
    "efficientnet": _efficientnet,
    "convnext": _convnext,
    "vit": _vit,
    "swin": _swin,
    "shufflenet": _shufflenet,
}


def _randomised(model):
    """Non-trivial norms and layer scales, so that a wrongly cut tensor shows in the outputs."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1, generator=generator)
                module.running_var.uniform_(0.5, 2, generator=generator)
            if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.5, 0.5, generator=generator)
    return model


@pytest.mark.parametrize("pattern", sorted(models.ARCHITECTURE_PATTERNS))
def test_pattern_is_pruned_and_stripped_exactly(compress, pattern, tmp_path):
    make, check_groups = models.ARCHITECTURE_PATTERNS[pattern], CHECKS[pattern]
    torch.manual_seed(0)
    controller = compress(_randomised(make()), **PRUNE_ALL)
    check_groups(controller)
    controller.compression_rate = 0.5
    masked = controller.model.eval()
    stripped = controller.strip().eval()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        expected, result = masked(x), stripped(x)
    assert (result - expected).abs().max() <= 1e-5 * expected.abs().max()
    path = controller.export_model(tmp_path / f"{pattern}.onnx", example_inputs=(x[:2],))
    session = onnxruntime.InferenceSession(str(path))
    (onnx_result,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(onnx_result, result.numpy(), rtol=1e-4, atol=1e-5)

    rows = {row[0]: row for row in controller.statistics()["filter_pruning"].tables[0].rows}
    sample = x[:1]
    assert rows["FLOPs"][1:3] == (measured_flops(make(), sample), measured_flops(stripped, sample))
    assert rows["Parameters"][1:3] == (sum(p.numel() for p in make().parameters()), sum(p.numel() for p in stripped.parameters()))
    assert rows["Parameters"][2] < 0.45 * rows["Parameters"][1]


def test_filters_pruned_by_hand_follow_the_channel_shuffles(compress):
    model = _randomised(models.ShuffleNetLike())
    shuffled = ("units.0.branch1.1.0", "units.0.branch2.2.0", "units.1.branch2.2.0")
    weak = [1, 2, 5, 6, 9, 10, 13, 14]  # positions 1, 2, 5 and 6 of both halves of the shuffled group
    with torch.no_grad():
        for layer in shuffled:
            model.get_submodule(layer).weight[weak] *= 1e-3
    original = {name: module.weight.detach().clone() for name, module in model.named_modules() if isinstance(module, nn.Conv2d)}
    controller = compress(model, **PRUNE_ALL)
    controller.compression_rate = 0.5
    stripped = controller.strip().eval()
    kept = [c for c in range(16) if c not in weak]
    keep = controller._removal_masks()
    assert keep[controller.analysis.group_of(shuffled[0]).id].tolist() == [c in kept for c in range(16)]
    for layer in shuffled:
        inputs = controller.analysis.layers[layer].inputs.kept_indices(keep)
        assert torch.equal(stripped.get_submodule(layer).weight, original[layer][kept][:, inputs])
    columns = controller.analysis.layers["head.0"].inputs.kept_indices(keep)
    assert sorted(columns.tolist()) != columns.tolist()  # the stripped model holds its channels in another order ...
    rows = np.flatnonzero(keep[controller.analysis.group_of("head.0").id])
    assert torch.equal(stripped.head[0].weight, original["head.0"][rows][:, columns])  # ... and the head reads them so
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        expected, result = controller.model.eval()(x), stripped(x)
    assert (result - expected).abs().max() <= 1e-5 * expected.abs().max()


class UnregisteredAttention(models.WindowAttention):
    """The same functional attention as a class aac does not know: traced operation by operation."""


def test_functional_attention_aac_does_not_know_counts_its_flops_and_keeps_its_heads(compress):
    model = models.SwinLike()
    model.stage1.attn.__class__ = UnregisteredAttention
    controller = compress(model, **PRUNE_ALL)
    graph = controller.prepared.graph
    linear = [n for n in graph.of_type(controller.analysis.layers["stage1.mlp.0"].metatype) if n.layer == "stage1.attn.qkv"]
    assert linear and linear[0].op == "linear"  # F.linear with the layer's weights is that layer at work
    assert ("stage1.mlp.0",) in _groups(controller)  # the MLP is still pruned ...
    assert any(r.kind in ("op", "code") for r in _kept(controller)["patch"])  # ... the heads' stream is not, and says why
    controller.compression_rate = 0.5
    rows = {row[0]: row for row in controller.statistics()["filter_pruning"].tables[0].rows}
    x = torch.randn(1, 3, 8, 8)
    assert rows["FLOPs"][1:3] == (measured_flops(controller.model, x), measured_flops(controller.strip(), x))


class ChannelReads(nn.Module):
    """An SE block that reads its channel count (fine: it reshapes to it) and a reshape that writes one (not fine)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(8, 4), nn.Linear(4, 8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        x = self.conv1(x)
        b, c, _, _ = x.size()
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3)).view(b, c))))).view(b, c, 1, 1)
        y = self.conv2(x * gate)
        return self.conv3(y.reshape(b, 16, 64).reshape(b, 16, 8, 8))


def test_channel_counts_in_the_code(compress):
    controller = compress(ChannelReads(), prune_first_conv=True, filters_multiple_of=1)
    assert ("conv1", "fc2") in _groups(controller)
    assert _kept(controller)["conv2"] == ("its channel count 16 is written in the code of 'reshape' in the model",)


def test_nncf_defaults_hold_a_residual_network_back_and_say_why(compress):
    with pytest.warns(
        PruningCoverageWarning,
        match=r"only 4 of 15 convolutions and 0 of 1 linear layers can lose filters: 4 producer "
        r"layers in 4 prunable groups; 12 kept whole \(8 by downsampling convolutions "
        r"\(prune_downsample_convs: false\), 3 by first layers \(prune_first_conv: false\), "
        r"1 by model outputs",
    ):
        controller = compress(models.ResNet(layers=(2, 2, 2)))
    with pytest.raises(CompressionRateError, match=r"first layers \(prune_first_conv: false\)"):
        controller.compression_rate = 0.9
    kept_table = controller.statistics()["filter_pruning"].tables[-1]
    assert kept_table.title.startswith("Layers kept whole (") and "by downsampling convolutions" in kept_table.title


class SharedScale(nn.Module):
    """A layer scale that also feeds an operation aac does not follow (so it must keep its size)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.scale = nn.Parameter(torch.ones(8, 1, 1))

    def forward(self, x):
        return self.conv2(self.conv1(x) * self.scale) + torch.roll(self.scale, 1, 0).sum()


def test_a_stored_tensor_used_elsewhere_keeps_its_channels(compress):
    kept = _kept(compress(SharedScale(), prune_first_conv=True, filters_multiple_of=1))
    assert "'scale' follows its channels but is also used where aac cannot follow them" in kept["conv1"]
