"""rb_sparsity on torch models: trainable masks, the sparsity loss, freezing, the level, strip and state."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from aac.core import CompressionStage, create_compressed_model
from aac.sparsity.rb import LOSS_SCALE
from aac.sparsity.torch.rb import RBMask, RBSparsity, binarize
from aac.torch.testing.digits import DigitsCNN

SHAPE = {"sample_size": [1, 1, 8, 8]}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def compress(model: nn.Module | None = None, sparsity_init: float | None = None, **params: Any) -> tuple[RBSparsity, nn.Module]:
    section: dict[str, Any] = {"algorithm": "rb_sparsity", "params": params}
    if sparsity_init is not None:
        section["sparsity_init"] = sparsity_init
    controller, compressed = create_compressed_model(model or DigitsCNN(), {"input_info": SHAPE, "compression": section})
    assert isinstance(controller, RBSparsity)
    return controller, compressed


def kept_fraction(controller: RBSparsity) -> float:
    return 1.0 - controller.measured_level()


def optimise_loss(controller: RBSparsity, steps: int = 200, lr: float = 0.05) -> None:
    """Minimise the sparsity loss alone. Without a task loss every logit gets the same gradient, so they
    are spread first (in training the task loss does that): the loss then moves the keep threshold."""
    logits = [layer.transform.logits for layer in controller.layers]
    with torch.no_grad():
        for tensor in logits:
            if bool((tensor == tensor.flatten()[0]).all()):
                tensor.copy_(torch.randn_like(tensor) + 2.0)
    optimizer = torch.optim.Adam(logits, lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        controller.loss().backward()
        optimizer.step()


def test_every_layer_gets_trainable_logits_starting_at_keep() -> None:
    controller, model = compress()
    assert controller.settings.schedule == "exponential"  # RB's default, as in NNCF
    assert all(isinstance(layer.transform, RBMask) for layer in controller.layers)
    logits = model.fc.parametrizations.weight[0].logits
    assert logits.requires_grad and logits.shape == model.fc.weight.shape
    assert torch.sigmoid(logits).mean().item() == pytest.approx(0.99)
    assert "fc.parametrizations.weight.0.logits" in dict(model.named_parameters())


def test_binarize_is_a_straight_through_threshold() -> None:
    x = torch.tensor([-1.0, 0.5], requires_grad=True)
    out = binarize(x)
    assert out.tolist() == [0.0, 1.0]
    out.sum().backward()
    assert torch.allclose(x.grad, torch.sigmoid(x) * (1 - torch.sigmoid(x)))


def test_training_mode_samples_noise_and_eval_mode_is_deterministic() -> None:
    controller, model = compress()
    transform = model.fc.parametrizations.weight[0]
    with torch.no_grad():
        transform.logits.zero_()  # keep probability 0.5: samples differ
    model.train()
    assert not torch.equal(model.fc.weight, model.fc.weight)
    model.eval()
    assert torch.equal(model.fc.weight, model.fc.weight)
    with torch.no_grad():
        transform.logits.fill_(-1.0)
    assert (model.fc.weight == 0).all()


def test_loss_value_follows_the_formula() -> None:
    controller, _ = compress(sparsity_init=0.3, sparsity_target=0.5)
    assert controller.compression_rate == pytest.approx(0.3)
    expected = ((1.0 - (1.0 - 0.3)) / LOSS_SCALE) ** 2  # all weights kept at the start
    assert float(controller.loss().detach()) == pytest.approx(expected)
    assert controller.loss.statistics()["mean_keep_probability"] == pytest.approx(0.99)


def test_the_loss_drives_the_masks_to_the_level() -> None:
    controller, _ = compress(sparsity_init=0.4, sparsity_target=0.5)
    optimise_loss(controller)
    assert kept_fraction(controller) == pytest.approx(0.6, abs=0.03)
    controller.compression_rate = 0.2  # lowering the level brings weights back
    optimise_loss(controller)
    assert kept_fraction(controller) == pytest.approx(0.8, abs=0.03)


def test_local_mode_loss_targets_each_layer() -> None:
    controller, _ = compress(sparsity_init=0.2, sparsity_level_setting_mode="local")
    controller.set_sparsity_level(0.6, "conv2")
    optimise_loss(controller, steps=300)
    rows = {r[0]: r[2] for r in controller.statistics()["rb_sparsity"].tables[0].rows}
    assert rows["conv2"] == pytest.approx(0.6, abs=0.05)
    assert rows["fc"] == pytest.approx(0.2, abs=0.05)
    assert controller.compression_stage() == CompressionStage.FULLY_COMPRESSED


def test_freeze_disables_the_loss_and_the_gradients_and_writing_the_rate_unfreezes() -> None:
    controller, model = compress(sparsity_init=0.1, sparsity_target=0.3, sparsity_target_epoch=1, sparsity_freeze_epoch=1)
    controller.scheduler.epoch_step()
    assert not controller.frozen
    controller.scheduler.epoch_step()
    assert controller.frozen and controller.compression_stage() == CompressionStage.PARTIALLY_COMPRESSED  # masks never moved
    assert controller.loss() == 0.0
    assert not model.fc.parametrizations.weight[0].logits.requires_grad
    model.train()
    assert torch.equal(model.fc.weight, model.fc.weight)  # frozen masks are deterministic even while training
    controller.compression_rate = 0.6
    assert not controller.frozen and model.fc.parametrizations.weight[0].logits.requires_grad
    assert float(controller.loss().detach()) > 0


def test_exponential_schedule_sets_the_loss_target() -> None:
    controller, _ = compress(sparsity_init=0.0, sparsity_target=0.75, sparsity_target_epoch=2)
    targets = []
    for _ in range(3):
        controller.scheduler.epoch_step()
        targets.append(round(controller.loss.statistics()["target_sparsity_level"], 6))
    assert targets == [0.0, 0.5, 0.75]


def test_adaptive_schedule_waits_for_the_masks() -> None:
    controller, _ = compress(sparsity_init=0.2, schedule="adaptive", sparsity_target=0.4, patience=1, step=0.1, eps=0.02)
    controller.scheduler.epoch_step()
    controller.scheduler.epoch_step()
    assert controller.compression_rate == pytest.approx(0.2)  # masks still keep everything: no raise
    optimise_loss(controller)
    controller.scheduler.epoch_step()
    assert controller.compression_rate == pytest.approx(0.3)


def test_strip_folds_the_deterministic_masks() -> None:
    controller, model = compress(sparsity_init=0.5)
    optimise_loss(controller)
    model.eval()
    x = torch.randn(3, 1, 8, 8)
    expected = model(x)
    model.train()
    stripped = controller.strip()
    assert model.training  # the live model keeps its mode
    assert not any(parametrize.is_parametrized(m) for m in stripped.modules())
    assert not any("logits" in n for n, _ in stripped.named_parameters())
    stripped.eval()
    assert torch.allclose(stripped(x), expected)
    assert float((stripped.fc.weight == 0).float().mean()) > 0.3


def test_state_round_trip() -> None:
    controller, model = compress(sparsity_init=0.1, sparsity_target=0.5, sparsity_target_epoch=2, sparsity_freeze_epoch=3)
    optimise_loss(controller, steps=20)
    for _ in range(4):
        controller.scheduler.epoch_step()
    state, weights = controller.get_state(), copy.deepcopy(model.state_dict())
    fresh_model = DigitsCNN()
    fresh, _ = create_compressed_model(
        fresh_model,
        {
            "input_info": SHAPE,
            "compression": {
                "algorithm": "rb_sparsity",
                "sparsity_init": 0.1,
                "params": {"sparsity_target": 0.5, "sparsity_target_epoch": 2, "sparsity_freeze_epoch": 3},
            },
        },
        compression_state=state,
    )
    fresh_model.load_state_dict(weights)
    assert fresh.frozen and fresh.compression_rate == controller.compression_rate
    assert not fresh_model.fc.parametrizations.weight[0].logits.requires_grad
    assert fresh.get_state() == state
    model.eval()
    fresh_model.eval()
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(fresh_model(x), model(x))


def test_fully_compressed_needs_the_masks_at_the_target() -> None:
    controller, _ = compress(sparsity_init=0.3, sparsity_target=0.3, sparsity_target_epoch=0, eps=0.02)
    controller.scheduler.epoch_step()
    assert controller.compression_stage() == CompressionStage.PARTIALLY_COMPRESSED  # the level is set, the masks keep all
    optimise_loss(controller)
    assert controller.measured_level() == pytest.approx(0.3, abs=0.02)
    assert controller.compression_stage() == CompressionStage.FULLY_COMPRESSED


@pytest.mark.parametrize("where", ["section", "root"])
def test_compression_lr_multiplier_speeds_up_the_masks(where: str) -> None:
    section: dict[str, Any] = {"algorithm": "rb_sparsity", "sparsity_init": 0.5, "params": {"sparsity_target": 0.5}}
    config: dict[str, Any] = {"input_info": SHAPE, "compression": section}
    (section if where == "section" else config)["compression_lr_multiplier"] = 20
    fast, fast_model = create_compressed_model(DigitsCNN(), config)
    slow, _ = compress(sparsity_init=0.5)
    transform = fast_model.fc.parametrizations.weight[0]
    assert transform.multiplier == 20
    assert torch.allclose(transform.values(), slow.layers[2].transform.values())  # same logits, stored divided by 20
    moves = []
    for controller in (fast, slow):
        before = controller.layers[2].transform.values().detach().clone()
        optimizer = torch.optim.SGD([layer.transform.logits for layer in controller.layers], lr=1.0)
        controller.loss().backward()
        optimizer.step()
        moves.append(float((controller.layers[2].transform.values().detach() - before).mean()))
    assert moves[0] < 0 and moves[0] == pytest.approx(400 * moves[1], rel=1e-3)  # SGD: multiplier^2 times as far
