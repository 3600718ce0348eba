"""FLOPs and parameter counting as functions of the kept filters."""

import numpy as np
import torch
from torch import nn

from aac.pruning.cost import CostModel
from aac.pruning.groups import PruningRules, analyze
from aac.torch.tracing import trace_model


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.conv2 = nn.Conv2d(8, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        x = self.conv2(self.dw(torch.relu(self.bn(self.conv1(x)))))
        return self.fc(torch.flatten(x, 1))


def _cost():
    graph = trace_model(Small(), {"sample_size": [2, 3, 8, 8]}).graph
    analysis = analyze(graph, PruningRules(prune_first=True, prune_downsample=True))
    return CostModel(graph, analysis), analysis


def test_full_model_counts():
    cost, analysis = _cost()
    full = np.array([g.channels for g in analysis.groups])
    conv1, dw, conv2, fc = 2 * 27 * 8 * 64, 2 * 9 * 8 * 64, 2 * 72 * 4 * 16, 2 * 64 * 10
    assert cost.flops(full) == conv1 + dw + conv2 + fc  # per sample, biases excluded
    assert cost.params(full) == sum(p.numel() for p in Small().parameters())
    assert cost.filters(full) == 8 + 8 + 4 + 10


def test_pruned_counts_follow_the_groups():
    cost, analysis = _cost()
    assert [g.producers for g in analysis.groups] == [("conv1",), ("conv2",)]
    kept = np.array([4, 2])  # conv1 (with bn and the depthwise conv) keeps 4, conv2 keeps 2
    conv1, dw, conv2, fc = 2 * 27 * 4 * 64, 2 * 9 * 4 * 64, 2 * 36 * 2 * 16, 2 * 32 * 10
    assert cost.flops(kept) == conv1 + dw + conv2 + fc
    assert cost.params(kept) == (27 * 4 + 4) + 2 * 4 + 9 * 4 + (36 * 2 + 2) + (32 * 10 + 10)
    rows = {c.layer: c for c in cost.per_layer(kept)}
    assert (rows["fc"].in_channels, rows["dw"].in_channels, rows["bn"].out_channels) == (32, 4, 4)
