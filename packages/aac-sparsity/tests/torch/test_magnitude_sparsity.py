"""magnitude_sparsity on torch models: masks, local levels, schedule, freeze, strip, state (getter = setter and the
rate going down and up are aac-core's conformance suite: test_sparsity_conformance.py)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from aac.core import CompressionStage, ConfigError, create_compressed_model
from aac.core.errors import AacError, CompressionRateError
from aac.sparsity.levels import importance, keep_mask
from aac.sparsity.torch.magnitude import MagnitudeSparsity
from aac.torch.testing.digits import DigitsCNN

SHAPE = {"sample_size": [1, 1, 8, 8]}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def compress(
    model: nn.Module | None = None, sparsity_init: float = 0.0, section: dict[str, Any] | None = None, **params: Any
) -> tuple[MagnitudeSparsity, nn.Module]:
    model = model or DigitsCNN()
    cfg = {
        "input_info": SHAPE,
        "compression": {"algorithm": "magnitude_sparsity", "sparsity_init": sparsity_init, "params": params, **(section or {})},
    }
    controller, compressed = create_compressed_model(model, cfg)
    assert isinstance(controller, MagnitudeSparsity) and compressed is model
    return controller, compressed


def zero_fraction(controller: MagnitudeSparsity) -> float:
    return controller.measured_level()


def test_layers_and_transforms() -> None:
    controller, model = compress()
    assert [layer.name for layer in controller.layers] == ["conv1", "conv2", "fc"]
    assert all(parametrize.is_parametrized(getattr(model, n), "weight") for n in ("conv1", "conv2", "fc"))
    assert not parametrize.is_parametrized(model.bn1)


def test_local_mode_rate_is_the_weighted_level_of_the_layers() -> None:
    controller, _ = compress(sparsity_init=0.2, sparsity_level_setting_mode="local")
    assert controller.compression_stage() == CompressionStage.FULLY_COMPRESSED
    assert controller.scheduler_disabled  # no schedule in local mode
    controller.set_sparsity_level(0.8, "fc")
    sizes = {layer.name: layer.numel for layer in controller.layers}
    expected = (0.2 * (sizes["conv1"] + sizes["conv2"]) + 0.8 * sizes["fc"]) / sum(sizes.values())
    assert controller.compression_rate == pytest.approx(expected)
    assert zero_fraction(controller) == pytest.approx(expected, abs=3 * 0.5 / sum(sizes.values()))
    controller.compression_rate = 0.4
    assert controller.layer_levels == dict.fromkeys(sizes, 0.4)
    assert controller.compression_rate == pytest.approx(0.4)
    with pytest.raises(AacError, match="not a sparsified layer"):
        controller.set_sparsity_level(0.1, "bn1")


def test_per_layer_level_needs_local_mode() -> None:
    controller, _ = compress()
    with pytest.raises(AacError, match="local"):
        controller.set_sparsity_level(0.3, "fc")


@pytest.mark.parametrize("value", [-0.1, 1.5, 1.0, float("nan"), True, "0.5", None])
def test_rates_that_are_not_a_fraction_below_one_are_rejected(value: Any) -> None:
    """1.0 would zero every weight; True and "0.5" are not rates."""
    controller, _ = compress()
    with pytest.raises(CompressionRateError, match=r"magnitude_sparsity: the compression_rate must be (a number )?in \[0, 1\)"):
        controller.compression_rate = value


@pytest.mark.parametrize("kind", ["normed_abs", "abs"])
def test_masks_follow_weight_importance(kind: str) -> None:
    controller, model = compress(weight_importance=kind)
    controller.compression_rate = 0.5
    scores = [importance(layer.weight.detach().numpy(), kind) for layer in controller.layers]
    flat = np.concatenate([s.ravel() for s in scores])
    expected, _ = keep_mask(flat, 0.5)
    actual = np.concatenate([layer.transform.mask.numpy().ravel() for layer in controller.layers]) > 0
    assert (actual == expected).all()


def test_normed_abs_is_invariant_to_a_layers_scale_and_abs_is_not() -> None:
    model = DigitsCNN()
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.fc.weight.mul_(100)

    def masks(m: nn.Module, kind: str) -> list[torch.Tensor]:
        controller, _ = compress(copy.deepcopy(m), weight_importance=kind)
        controller.compression_rate = 0.3
        return [layer.transform.mask.clone() for layer in controller.layers]

    assert all(torch.equal(a, b) for a, b in zip(masks(model, "normed_abs"), masks(scaled, "normed_abs"), strict=True))
    plain, big = masks(model, "abs"), masks(scaled, "abs")
    assert float((big[2] == 0).float().mean()) < float((plain[2] == 0).float().mean())


def test_polynomial_schedule_moves_masks_each_epoch_until_freeze() -> None:
    controller, model = compress(sparsity_init=0.1, sparsity_target=0.5, sparsity_target_epoch=2, sparsity_freeze_epoch=3, power=1)
    assert controller.compression_rate == pytest.approx(0.1)
    assert controller.compression_stage() == CompressionStage.PARTIALLY_COMPRESSED
    seen = []
    for _ in range(5):
        controller.scheduler.epoch_step()
        seen.append(round(controller.compression_rate, 6))
        with torch.no_grad():
            model.fc.weight.add_(torch.randn_like(model.fc.weight))  # "training" changes the weights
    assert seen == [0.1, 0.3, 0.5, 0.5, 0.5]
    assert controller.frozen and controller.compression_stage() == CompressionStage.FULLY_COMPRESSED
    frozen_mask = controller.layers[2].transform.mask.clone()
    controller.scheduler.epoch_step()
    assert torch.equal(controller.layers[2].transform.mask, frozen_mask)  # frozen: masks no longer follow the weights


def test_masks_are_recomputed_from_current_weights_every_epoch_before_freezing() -> None:
    controller, model = compress(sparsity_init=0.5, sparsity_target=0.5, sparsity_target_epoch=0)
    controller.scheduler.epoch_step()
    before = controller.layers[2].transform.mask.clone()
    with torch.no_grad():
        model.fc.parametrizations.weight.original.copy_(torch.randn_like(model.fc.weight))
    controller.scheduler.epoch_step()
    assert not torch.equal(controller.layers[2].transform.mask, before)


def test_setter_works_when_frozen_and_keeps_it_frozen() -> None:
    controller, _ = compress(sparsity_target=0.3, sparsity_target_epoch=0, sparsity_freeze_epoch=0)
    controller.scheduler.epoch_step()
    assert controller.frozen
    controller.compression_rate = 0.7
    assert controller.frozen and zero_fraction(controller) == pytest.approx(0.7, abs=1e-3)


def test_update_per_optimizer_step_end_to_end() -> None:
    controller, _ = compress(
        sparsity_init=0.0, sparsity_target=0.4, sparsity_target_epoch=1, power=1, update_per_optimizer_step=True, steps_per_epoch=4
    )
    controller.scheduler.epoch_step()
    levels = []
    for _ in range(4):
        controller.scheduler.step()
        levels.append(round(zero_fraction(controller), 2))
    assert levels == [0.0, 0.1, 0.2, 0.3]


def test_multistep_and_exponential_schedules_on_the_model() -> None:
    controller, _ = compress(schedule="multistep", multistep_steps=[1], multistep_sparsity_levels=[0.2, 0.6])
    controller.scheduler.epoch_step()
    controller.scheduler.epoch_step()
    assert zero_fraction(controller) == pytest.approx(0.6, abs=1e-3)
    controller, _ = compress(schedule="exponential", sparsity_target=0.75, sparsity_target_epoch=2)
    for _ in range(2):
        controller.scheduler.epoch_step()
    assert zero_fraction(controller) == pytest.approx(0.5, abs=1e-3)


def test_adaptive_schedule_raises_the_level_every_patience_epochs() -> None:
    controller, _ = compress(sparsity_init=0.1, schedule="adaptive", sparsity_target=0.3, patience=2, step=0.1)
    levels = []
    for _ in range(6):
        controller.scheduler.epoch_step()
        levels.append(round(controller.compression_rate, 6))
    assert levels == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]


def test_disable_scheduler_freezes_only_the_schedule() -> None:
    controller, _ = compress(sparsity_init=0.1, sparsity_target=0.5, sparsity_target_epoch=2)
    controller.disable_scheduler()
    controller.scheduler.epoch_step()
    assert controller.compression_rate == pytest.approx(0.1)
    assert controller.compression_stage() == CompressionStage.FULLY_COMPRESSED
    controller.compression_rate = 0.4
    assert zero_fraction(controller) == pytest.approx(0.4, abs=1e-3)


def test_scopes_select_layers() -> None:
    controller, model = compress(section={"ignored_scopes": ["fc"]})
    assert [layer.name for layer in controller.layers] == ["conv1", "conv2"]
    assert not parametrize.is_parametrized(model.fc)
    controller, _ = compress(section={"target_scopes": ["DigitsCNN/Conv2d[conv1]"]})
    assert [layer.name for layer in controller.layers] == ["conv1"]
    controller, _ = compress(section={"ignored_scopes": ["{re}conv"]})
    assert [layer.name for layer in controller.layers] == ["fc"]


def test_a_scope_that_matches_nothing_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="matches no module"):
        compress(section={"ignored_scopes": ["fcc"]})


def test_excluding_every_layer_is_an_error() -> None:
    with pytest.raises(AacError, match="found no layer to sparsify"):
        compress(section={"target_scopes": ["bn1"]})


def test_embedding_and_linear_layers_are_sparsified() -> None:
    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(20, 6)
            self.fc = nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.emb(x).mean(1))

    controller, model = create_compressed_model(Bag(), {"compression": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}})
    assert [layer.name for layer in controller.layers] == ["emb", "fc"]
    assert float((model.emb.weight == 0).float().mean()) > 0.3
    assert model(torch.randint(0, 20, (3, 4))).shape == (3, 2)


def test_strip_folds_masks_into_plain_weights() -> None:
    controller, model = compress(sparsity_init=0.6, sparsity_target=0.7)
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    expected = model(x)
    stripped = controller.strip()
    assert stripped is not model
    assert not any(parametrize.is_parametrized(m) for m in stripped.modules())
    assert set(dict(stripped.named_parameters())) == {n for n, _ in DigitsCNN().named_parameters()}
    zeros = sum(int((stripped.get_submodule(layer.name).weight == 0).sum()) for layer in controller.layers)
    assert zeros == round(0.6 * sum(layer.numel for layer in controller.layers))
    assert torch.allclose(stripped(x), expected)
    assert parametrize.is_parametrized(model.fc)  # the training model is untouched


def test_statistics_tables() -> None:
    controller, _ = compress(sparsity_init=0.5, sparsity_target=0.7)
    stats = controller.statistics()["magnitude_sparsity"]
    assert stats.scalars["compression_rate"] == 0.5 and stats.scalars["target_sparsity_level"] == 0.7
    assert 0 < stats.scalars["model_sparsity"] < stats.scalars["sparsified_weights_sparsity"]
    assert stats.scalars["threshold"] > 0
    table = stats.tables[0]
    assert table.header == ("layer", "weight shape", "sparsity level", "share of sparsified weights", "target level", "threshold")
    assert [row[0] for row in table.rows] == ["conv1", "conv2", "fc"]
    assert "Statistics of magnitude_sparsity" in controller.statistics().to_str()


def test_state_round_trip_restores_levels_masks_and_schedule() -> None:
    controller, model = compress(sparsity_init=0.1, sparsity_target=0.5, sparsity_target_epoch=4, sparsity_freeze_epoch=5)
    for _ in range(3):
        controller.scheduler.epoch_step()
    controller.disable_scheduler()
    controller.compression_rate = 0.45
    state, weights = controller.get_state(), copy.deepcopy(model.state_dict())
    fresh_model = DigitsCNN()
    fresh, _ = create_compressed_model(
        fresh_model,
        {
            "input_info": SHAPE,
            "compression": {
                "algorithm": "magnitude_sparsity",
                "sparsity_init": 0.1,
                "params": {"sparsity_target": 0.5, "sparsity_target_epoch": 4, "sparsity_freeze_epoch": 5},
            },
        },
        compression_state=state,
    )
    fresh_model.load_state_dict(weights)
    assert fresh.compression_rate == 0.45 and fresh.scheduler_disabled
    assert fresh.get_state() == state
    model.eval()
    fresh_model.eval()
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(fresh_model(x), model(x))
