"""Tracing into the neutral graph: metatypes, attributes, scopes, shapes, and untraceable models."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aac.core.graph import (
    AttentionAttributes,
    ConcatAttributes,
    ConstantAttributes,
    ConvAttributes,
    FlattenAttributes,
    LinearAttributes,
    MatmulAttributes,
    Metatype,
    PermuteAttributes,
    ReshapeAttributes,
    ShapeAttributes,
)
from aac.torch.scopes import ScopeSelection
from aac.torch.testing.models import DenseNetLike, MobileNetLike, ResNet, SENet
from aac.torch.tracing import ModelTraceError, trace_model


class Ops(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(16 * 4, 5)

    def forward(self, x):
        y = self.conv(x)
        z = torch.sigmoid(self.bn(self.dw(y))) + y * 2
        z = torch.cat([z, y - 1], dim=1)
        z = F.max_pool2d(z, 2)
        return self.fc(z.mean((2, 3)).view(z.size(0), -1).repeat(1, 4))


@pytest.fixture(scope="module")
def traced():
    return trace_model(Ops(), {"sample_size": [2, 3, 4, 4]})


def _by_op(graph, op):
    return next(n for n in graph if n.op == op)


def test_layers_and_attributes(traced):
    graph = traced.graph
    conv = graph.node("conv")
    assert conv.metatype is Metatype.CONV and conv.layer == "conv"
    assert conv.attributes == ConvAttributes(3, 8, (3, 3), (1, 1), 1, False, True, channel_axis=-3)
    assert graph.node("dw").attributes.is_depthwise
    assert graph.node("bn").metatype is Metatype.BATCH_NORM
    assert graph.node("fc").metatype is Metatype.LINEAR
    assert conv.output_shape == (2, 8, 4, 4)


def test_functional_ops(traced):
    graph = traced.graph
    assert _by_op(graph, "sigmoid").attributes.preserves_zero is False
    mul = _by_op(graph, "mul")
    assert mul.metatype is Metatype.ACTIVATION and mul.attributes.preserves_zero  # scaling by a constant
    assert _by_op(graph, "sub").attributes.preserves_zero is False  # subtracting a constant
    add = _by_op(graph, "add")
    assert add.metatype is Metatype.ELEMENTWISE and len(add.inputs) == 2
    assert _by_op(graph, "cat").attributes == ConcatAttributes(along_channels=True, axis=-3)
    assert _by_op(graph, "max_pool2d").metatype is Metatype.POOL
    assert _by_op(graph, "mean").metatype is Metatype.SPATIAL_REDUCE
    assert _by_op(graph, "size").metatype is Metatype.SHAPE
    assert _by_op(graph, "view").attributes == FlattenAttributes(channel_major=True)
    assert _by_op(graph, "repeat").metatype is Metatype.UNKNOWN
    assert [n.name for n in graph.predecessors("output")] == ["fc"]


def test_scopes_of_functional_ops_are_their_modules():
    graph = trace_model(ResNet()).graph
    add = next(n for n in graph if n.op == "add")
    assert add.scope == "layers.0.0" and add.layer is None
    assert graph.layers()["layers.0.0.conv1"][0].scope == "layers.0.0"
    assert next(n for n in graph if n.op == "flatten").metatype is Metatype.FLATTEN


@pytest.mark.parametrize("model", [ResNet(), MobileNetLike(), DenseNetLike(), SENet()], ids=lambda m: type(m).__name__)
def test_reference_models_have_no_unknown_ops(model):
    graph = trace_model(model, {"sample_size": [1, 3, 8, 8]}).graph
    assert not [n.name for n in graph if n.metatype is Metatype.UNKNOWN]


def test_shape_pass_leaves_training_state_and_statistics_alone():
    model = ResNet().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace_model(model, {"sample_size": [4, 3, 8, 8], "filler": "random"})
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
            return x
        return -x


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.gate = Gate()
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.gate(self.conv(x)))


def test_untraceable_module_is_named_with_the_fix():
    with pytest.raises(ModelTraceError) as info:
        trace_model(Gated())
    message = str(info.value)
    assert "module 'gate' (Gate)" in message
    assert "if x.sum() > 0:" in message and "test_torch_graph.py" in message
    assert '"ignored_scopes": ["gate"]' in message


def test_ignored_module_is_traced_as_one_opaque_operation():
    traced = trace_model(Gated(), None, ScopeSelection(frozenset({"gate"})))
    gate = traced.graph.layers()["gate"][0]
    assert gate.metatype is Metatype.UNKNOWN and gate.op == "Gate"


def test_bad_input_info_is_reported():
    with pytest.raises(ModelTraceError, match=r"input_info shapes \[\[1, 5, 8, 8\]\]"):
        trace_model(ResNet(), {"sample_size": [1, 5, 8, 8]})


class ShapeOps(nn.Module):
    """Channels-last work on a layer's own weights, a stored scale, a product of tensors, attention."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.fc = nn.Linear(8, 8)
        self.scale = nn.Parameter(torch.ones(8))
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)
        y = F.linear(y, self.fc.weight, self.fc.bias) * self.scale
        tokens = y.reshape(y.size(0), -1, 8)
        tokens, _ = self.attention(tokens, tokens, tokens)
        return (tokens @ tokens.transpose(1, 2)).sum()


def test_shape_operations_functional_layers_and_attention():
    graph = trace_model(ShapeOps(), {"sample_size": [2, 3, 4, 4]}).graph
    assert _by_op(graph, "permute").attributes == PermuteAttributes((0, 2, 3, 1))
    linear = _by_op(graph, "linear")
    assert (linear.metatype, linear.layer, linear.attributes) == (Metatype.LINEAR, "fc", LinearAttributes(8, 8, True))
    assert _by_op(graph, "scale").attributes == ConstantAttributes("scale") and _by_op(graph, "scale").output_shape == (8,)
    assert _by_op(graph, "size").attributes == ShapeAttributes((-4,))  # the batch of a 4-D tensor
    assert _by_op(graph, "reshape").attributes == ReshapeAttributes((None, -1, 8))  # 8 is written in the code
    attention = _by_op(graph, "MultiheadAttention")
    assert attention.metatype is Metatype.ATTENTION
    assert attention.attributes == AttentionAttributes(8, 2, query_tokens=16, key_tokens=16, attended=16)
    assert [n.metatype for n in graph.successors(attention.name)] == [Metatype.ITEM, Metatype.ITEM]
    matmul = _by_op(graph, "matmul")
    assert matmul.metatype is Metatype.MATMUL and matmul.attributes == MatmulAttributes(2.0 * 16 * 16 * 8)  # per sample
