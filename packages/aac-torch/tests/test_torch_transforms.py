"""Weight transforms: masks act in forward, live in state_dict, and fold per owner."""

import copy

import pytest
import torch
from torch import nn

from aac.torch.transforms import (
    Mask,
    TransformError,
    add_transform,
    cut_channels,
    fold_all,
    fold_transforms,
    has_transforms,
    original,
    remove_transforms,
    transforms_of,
)


def _masked_conv():
    conv = nn.Conv2d(2, 4, 3)
    add_transform(conv, "weight", Mask(torch.tensor([1.0, 0.0, 1.0, 0.0]).view(4, 1, 1, 1), "pruning"))
    return conv


def test_mask_acts_in_forward_without_destroying_weights():
    conv = _masked_conv()
    stored = original(conv, "weight").detach().clone()
    assert torch.all(conv.weight[1] == 0) and torch.equal(conv.weight[0], stored[0])
    assert torch.equal(original(conv, "weight"), stored)
    out = conv(torch.randn(1, 2, 5, 5))
    assert torch.all(out[:, 1] == conv.bias[1])
    transforms_of(conv, "weight")[0].update(torch.ones(4))
    assert torch.equal(conv.weight, stored)  # lowering the level brings the filter back


def test_masks_are_buffers_in_state_dict_and_gradients_skip_masked_filters():
    conv = _masked_conv()
    assert "parametrizations.weight.0.mask" in conv.state_dict()
    conv(torch.randn(2, 2, 5, 5)).sum().backward()
    grad = conv.parametrizations.weight.original.grad
    assert torch.all(grad[1] == 0) and torch.any(grad[0] != 0)


def test_fold_bakes_in_only_the_owners_transforms():
    conv = _masked_conv()
    add_transform(conv, "weight", Mask(torch.full((4, 1, 1, 1), 2.0), "quantization"))
    expected = conv.weight.detach().clone()
    fold_transforms(conv, "weight", "pruning")
    assert [t.owner for t in transforms_of(conv, "weight")] == ["quantization"]
    assert torch.equal(conv.weight, expected)
    assert torch.all(original(conv, "weight")[1] == 0)


def test_fold_refuses_a_transform_that_runs_after_another_owners():
    conv = nn.Conv2d(2, 4, 3)
    add_transform(conv, "weight", Mask(torch.ones(4, 1, 1, 1), "quantization"))
    add_transform(conv, "weight", Mask(torch.ones(4, 1, 1, 1), "pruning"))
    with pytest.raises(TransformError, match="runs after Mask of 'quantization'"):
        fold_transforms(conv, "weight", "pruning")


def test_folding_a_deep_copy_leaves_the_original_parametrized():
    model = nn.Sequential(_masked_conv())
    for _ in range(2):  # folding a copy must not break the next copy (parametrize shares classes)
        stripped = copy.deepcopy(model)
        fold_all(stripped, "pruning")
        assert type(stripped[0]) is nn.Conv2d and not has_transforms(stripped)
    assert has_transforms(model) and torch.all(model[0].weight[1] == 0)


def test_adding_a_transform_to_a_missing_tensor_fails():
    with pytest.raises(TransformError, match="has no tensor 'bias'"):
        add_transform(nn.Conv2d(1, 1, 1, bias=False), "bias", Mask(torch.ones(1), "x"))


def test_cut_channels_under_transforms_and_removing_identities():
    conv = _masked_conv()
    add_transform(conv, "weight", Mask(torch.full((4, 1, 1, 1), 3.0), "quantization"))
    expected = conv.weight.detach()[[0, 2]].clone()
    keep = torch.tensor([0, 2])
    cut_channels(conv, "weight", 0, keep)
    cut_channels(conv, "bias", 0, keep)
    assert original(conv, "weight").shape == (2, 2, 3, 3) and isinstance(original(conv, "weight"), nn.Parameter)
    assert [t.mask.shape for t in transforms_of(conv, "weight")] == [(2, 1, 1, 1), (2, 1, 1, 1)]
    remove_transforms(conv, "pruning")  # its mask is all ones on the channels that are left
    assert [t.owner for t in transforms_of(conv, "weight")] == ["quantization"]
    torch.testing.assert_close(conv.weight, expected)
    assert conv.bias.shape == (2,)
