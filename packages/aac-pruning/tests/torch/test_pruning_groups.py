"""Pruning groups from the neutral graph: residual ties, depthwise and norm followers, concatenation,
grouped convolutions, flatten into linear layers, and the rules that keep groups whole."""

import numpy as np
import pytest
import torch
from torch import nn

from aac.core.graph import (
    ActivationAttributes,
    ConcatAttributes,
    ConvAttributes,
    FlattenAttributes,
    Graph,
    LinearAttributes,
    Metatype,
    Node,
    NormAttributes,
)
from aac.pruning.groups import ChannelLayout, ChannelRun, PruningRules, analyze
from aac.torch.testing.models import DenseNetLike, GroupedConvNet, MobileNetLike, ResNet, SENet
from aac.torch.tracing import trace_model


def _groups(analysis):
    return {g.producers: g.channels for g in analysis.groups}


def _kept(analysis):
    return {p: reasons for k in analysis.kept for p in k.producers for reasons in [k.reasons]}


def _analyze(model, shape=(1, 3, 8, 8), **rules):
    return analyze(trace_model(model, {"sample_size": list(shape)}).graph, PruningRules(**rules))


def test_resnet_residual_additions_tie_their_producers():
    analysis = _analyze(ResNet(), prune_downsample=True)
    groups = _groups(analysis)
    assert groups[("layers.1.0.downsample.0", "layers.1.0.conv2")] == 32
    assert groups[("layers.0.0.conv1",)] == 16
    # the stem feeds the first residual stage, so with the first-layer rule the stage stays whole
    assert "first layer" in _kept(analysis)["layers.0.0.conv2"][0]
    assert _kept(analysis)["fc"] == ("its channels reach the model output",)
    block = analysis.layers["layers.1.0.bn2"]
    assert block.metatype is Metatype.BATCH_NORM and block.outputs.groups == {analysis.group_of("layers.1.0.conv2").id}


def test_downsample_convolutions_keep_their_stage_by_default():
    kept = _kept(_analyze(ResNet()))
    assert "downsamples (stride (2, 2))" in kept["layers.1.0.conv2"][0]
    assert "layers.1.0.downsample.0" in kept


def test_depthwise_convolutions_follow_their_producer():
    analysis = _analyze(MobileNetLike())
    expand = analysis.group_of("blocks.0.block.0.0")
    assert "blocks.0.block.1.0" in expand.followers  # the depthwise conv
    depthwise = analysis.layers["blocks.0.block.1.0"]
    assert depthwise.inputs == depthwise.outputs == ChannelLayout((ChannelRun(expand.id, 32),))
    # projections of two residual blocks are tied by the addition between them
    assert ("blocks.1.block.2.0", "blocks.2.block.2.0") in _groups(analysis)


def test_concatenation_maps_each_producer_to_its_slice():
    analysis = _analyze(DenseNetLike())
    first, second = analysis.group_of("dense.0.conv"), analysis.group_of("dense.1.conv")
    consumer = analysis.layers["dense.2.conv"].inputs
    assert consumer.runs == (ChannelRun(None, 16), ChannelRun(first.id, 8), ChannelRun(second.id, 8))
    norm = analysis.layers["norm"]  # the norm after the last concatenation follows three groups
    assert len(norm.outputs.groups) == 3 and norm.outputs.channels == 40
    # the transition feeds the classifier through a flatten: 16 features per channel
    assert analysis.layers["fc"].inputs.repeat == 16


def test_grouped_convolutions_and_their_producers_stay_whole_where_the_backend_cannot_cut_them():
    analysis = _analyze(GroupedConvNet())
    kept = _kept(analysis)
    assert "grouped convolution (groups=4)" in kept["grouped.0"][0] and kept["grouped.0"][0].kind == "grouped"
    assert "it feeds grouped convolution 'grouped.0' (groups=4)" in kept["conv2.0"]
    assert set(_groups(analysis)) == {("conv3.0",), ("conv4.0",)}


def test_grouped_convolutions_lose_filters_evenly_per_group():
    analysis = _analyze(GroupedConvNet(), grouped_convolutions=True)
    assert set(_groups(analysis)) == {("conv2.0",), ("grouped.0",), ("conv3.0",), ("conv4.0",)}
    assert analysis.group_of("conv2.0").parts == analysis.group_of("grouped.0").parts == 4
    assert analysis.group_of("conv3.0").parts == 1


def test_squeeze_excitation_gate_ties_the_gated_producer():
    analysis = _analyze(SENet())
    assert ("conv2.0", "se.fc2") in _groups(analysis)
    assert analysis.layers["se.fc1"].inputs.groups == {analysis.group_of("conv2.0").id}


def _conv(name, source, cin, cout, stride=1, groups=1):
    return Node(
        name, Metatype.CONV, (source,), layer=name, op="Conv2d", attributes=ConvAttributes(cin, cout, (3, 3), (stride, stride), groups)
    )


def test_non_zero_activations_keep_the_channels_that_pass_through_them():
    graph = Graph(
        [
            Node("x", Metatype.INPUT),
            _conv("a", "x", 3, 8),
            _conv("b", "a", 8, 8),
            Node("sig", Metatype.ACTIVATION, ("b",), op="sigmoid", attributes=ActivationAttributes(False)),
            _conv("c", "sig", 8, 4),
            Node("out", Metatype.OUTPUT, ("c",)),
        ]
    )
    analysis = analyze(graph, PruningRules(prune_first=True))
    assert _groups(analysis) == {("a",): 8}
    assert "reach 'c' as non-zero values (through 'sigmoid' in the model)" in _kept(analysis)["b"][0]


def test_batch_norms_that_are_not_masked_keep_their_producers():
    graph = Graph(
        [
            Node("x", Metatype.INPUT),
            _conv("a", "x", 3, 8),
            Node("bn", Metatype.BATCH_NORM, ("a",), layer="bn", op="BatchNorm2d", attributes=NormAttributes(8)),
            _conv("c", "bn", 8, 4),
            Node("out", Metatype.OUTPUT, ("c",)),
        ]
    )
    assert _groups(analyze(graph, PruningRules(prune_first=True))) == {("a",): 8}
    kept = _kept(analyze(graph, PruningRules(prune_first=True, prune_batch_norms=False)))
    assert "prune_batch_norms is false" in kept["a"][0]


def test_flatten_into_linear_layers_without_shapes():
    graph = Graph(
        [
            Node("x", Metatype.INPUT),
            _conv("a", "x", 3, 8),
            Node("flat", Metatype.FLATTEN, ("a",), op="flatten", attributes=FlattenAttributes(channel_major=False)),
            Node("fc", Metatype.LINEAR, ("flat",), layer="fc", attributes=LinearAttributes(8 * 9, 10)),
            Node("out", Metatype.OUTPUT, ("fc",)),
        ]
    )
    analysis = analyze(graph, PruningRules(prune_first=True))
    layout = analysis.layers["fc"].inputs
    assert (layout.repeat, layout.channel_major) == (9, False)  # the factor comes from in_features


def _shared_layer_graph(second_input):
    return Graph(
        [
            Node("x", Metatype.INPUT),
            _conv("a", "x", 3, 8),
            _conv("b", "a", 8, 8),
            Node("odd", Metatype.UNKNOWN, ("b",), op="roll"),
            _conv("c", "odd", 8, 8),
            _conv("d", "c", 8, 8),
            Node("d_again", Metatype.CONV, (second_input,), layer="d", op="Conv2d", attributes=ConvAttributes(8, 8, (3, 3), (1, 1))),
            Node("cat", Metatype.CONCAT, ("d", "d_again"), attributes=ConcatAttributes(True)),
            _conv("e", "cat", 16, 4),
            Node("out", Metatype.OUTPUT, ("e",)),
        ]
    )


def test_unknown_operations_shared_layers_and_scope_rules():
    graph = _shared_layer_graph("c")
    analysis = analyze(graph, PruningRules(prune_first=True, is_ignored=lambda layer: layer == "a"))
    kept = _kept(analysis)
    assert kept["a"] == ("'a' is in ignored_scopes",)
    assert "it feeds 'roll' in the model, which aac cannot follow channels through" in kept["b"]
    assert _groups(analysis) == {("c",): 8, ("d",): 8}  # d is called twice: still one group
    d = analysis.group_of("d").id
    assert analysis.layers["e"].inputs.runs == (ChannelRun(d, 8), ChannelRun(d, 8))
    targets = analyze(graph, PruningRules(prune_first=True, is_target=lambda layer: layer == "c"))
    assert _groups(targets) == {("c",): 8}


def test_a_shared_layer_needs_identically_pruned_inputs():
    analysis = analyze(_shared_layer_graph("d"), PruningRules(prune_first=True))
    assert _groups(analysis) == {("a",): 8}
    assert "layer 'd' is called several times with differently pruned inputs" in _kept(analysis)["c"]


class TwoShuffles(nn.Module):
    """ShuffleNetV2's pattern at its smallest: two branches joined and shuffled, then (per unit) a split, one half
    passing through to the next shuffle, the other through a convolution."""

    def __init__(self, style="view", units=1):
        super().__init__()
        self.style = style
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
        self.c = nn.ModuleList(nn.Conv2d(4, 4, 1) for _ in range(units))
        self.out = nn.Conv2d(8, 5, 1)

    def shuffle(self, x):
        b, c, h, w = x.size()
        if self.style == "literal":
            return x.view(b, 2, 4, h, w).transpose(1, 2).reshape(b, 8, h, w)
        if self.style == "unflatten":
            return x.unflatten(1, (2, -1)).permute(0, 2, 1, 3, 4).flatten(1, 2)
        return x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)

    def forward(self, x):
        x = self.shuffle(torch.cat([self.a(x), self.b(x)], dim=1))
        for conv in self.c:
            passing, branch = x.chunk(2, dim=1)
            x = self.shuffle(torch.cat([passing, conv(branch)], dim=1))
        return self.out(x)


@pytest.mark.parametrize("style", ["view", "unflatten"])
def test_a_channel_shuffle_is_a_permutation_the_stripped_model_recomputes(style):
    analysis = _analyze(TwoShuffles(style), prune_first=True)
    shuffled = analysis.group_of("a")
    # the shuffles mix a, b and c, which keep the same filters - at the same positions in both halves, so that each
    # half of the split holds the kept channels of the same half of the full tensor
    assert (shuffled.producers, shuffled.channels, shuffled.parts) == (("a", "b", "c.0"), 4, 2)
    keep = [np.array([False, True, False, True])]  # a1, a3, b1, b3, c1, c3 stay
    # the full model's "out" reads a0 c0 b0 c1 a1 c2 b1 c3; the stripped one shuffles its six channels
    # to a1 b1 a3 b3, splits them, and shuffles a1 b1 | c1 c3 to a1 c1 b1 c3: positions 4, 3, 6, 7 of the full input
    consumer = analysis.layers["out"].inputs
    assert consumer.keep_vector(keep).tolist() == [False, False, False, True, True, False, True, True]
    assert consumer.kept_indices(keep).tolist() == [4, 3, 6, 7]
    assert analysis.layers["c.0"].inputs.kept_indices(keep).tolist() == [2, 3]  # the second half: a2 b2 a3 b3


def test_a_channel_shuffle_that_writes_its_channel_count_keeps_its_producers():
    kept = _kept(_analyze(TwoShuffles("literal"), prune_first=True))
    assert "its channel count 8 is written in the code of 'view' in the model" in kept["a"]


def test_shuffles_no_even_removal_keeps_exact_keep_their_producers():
    # two splits after the shuffles would need the 4 filters in 4 equal parts: nothing left to remove
    kept = _kept(_analyze(TwoShuffles(units=2), prune_first=True))
    reason = "its channels go through 'chunk' in the model, which no even removal of its filters keeps consistent"
    assert reason in kept["a"] and kept["a"] == kept["c.1"]
