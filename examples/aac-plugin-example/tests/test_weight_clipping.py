"""Tests of the example plugin, written the way a plugin's own tests should be.

The plugin module is registered in code (``autoload=False``) next to aac-torch's backend, so the tests
see exactly this plugin, the torch backend and aac-core's built-ins, whatever else is installed. Run
them after installing the package: ``pip install -e .[test] && pytest``.

The level contract has a test of its own: :func:`check_level_contract` replays what the adaptive loop
does with ``compression_rate`` and checkpoints, and a setter that rebuilds the weights from a copy taken
at construction (the trap the guide warns about) fails it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import torch
from aac_plugin_example import plugin
from aac_plugin_example.clipping import WeightClipping, clipped_count
from torch import nn

import aac.torch.plugin
from aac.core import (
    AacError,
    ConfigError,
    Registry,
    create_accuracy_aware_training_loop,
    create_compressed_model,
    get_plugin_manager,
    load_config,
)
from aac.torch import TorchBackend, has_transforms, original
from aac.torch.testing.digits import DigitsCNN, Trainer, digits, pretrain

INPUT_INFO = {"sample_size": [1, 1, 8, 8]}


@pytest.fixture
def registry() -> Registry:
    return Registry(get_plugin_manager(autoload=False, plugins=[aac.torch.plugin, plugin]))


def config_for(rate: float, **section: Any) -> dict[str, Any]:
    return {"input_info": INPUT_INFO, "compression": {"algorithm": "weight_clipping", "params": {"clipping_rate": rate}, **section}}


def compress(registry: Registry, rate: float, **section: Any) -> tuple[WeightClipping, DigitsCNN]:
    torch.manual_seed(0)
    controller, model = create_compressed_model(DigitsCNN(), config_for(rate, **section), registry=registry)
    assert isinstance(controller, WeightClipping)
    return controller, model


@torch.no_grad()
def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(x)


@torch.no_grad()
def train_a_little(model: nn.Module, seed: int) -> None:
    """Move every stored weight, as a training epoch would."""
    generator = torch.Generator().manual_seed(seed)
    for parameter in model.parameters():
        parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def test_the_largest_weights_of_every_layer_are_clipped(registry: Registry) -> None:
    controller, model = compress(registry, 0.5)
    assert set(controller.layers) == {"conv1", "conv2", "fc"}
    for path in controller.layers:
        module = model.get_submodule(path)
        stored, seen = original(module, "weight"), module.weight  # the weight as stored, and as the layer sees it
        clipped = seen != stored
        assert int(clipped.sum()) == clipped_count(stored.numel(), 0.5)
        assert stored[clipped].abs().min() > seen.abs().max()  # the largest magnitudes, clamped to the largest one left
    assert controller.statistics()["weight_clipping"].scalars == {
        "compression_rate": 0.5,
        "clipped_weights": float(36 + 576 + 1280),
        "clipped_layers": 3.0,
    }


def test_scopes_select_the_layers(registry: Registry) -> None:
    controller, _ = compress(registry, 0.5, ignored_scopes=["fc"])
    assert set(controller.layers) == {"conv1", "conv2"}
    with pytest.raises(AacError, match="found no layer to clip"):
        compress(registry, 0.5, ignored_scopes=["conv1", "conv2", "fc"])


# -- the level contract ------------------------------------------------------------------------
def check_level_contract(controller: Any, model: nn.Module) -> None:
    """What the adaptive loop does with the rate and with checkpoints, and what it relies on.

    1. A level's best checkpoint (weights, then controller state) restores the model that was validated,
       after the search has moved on to another rate and trained it.
    2. A rate written after training applies to the trained weights: another rate and back, with no
       training in between, gives the same model.
    """
    backend, x = TorchBackend(), torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    controller.compression_rate = 0.5  # a level ...
    train_a_little(model, seed=1)  # ... trained, then validated and kept
    validated = outputs(model, x)
    weights, state = backend.model_state(model), controller.get_state()

    controller.compression_rate = 0.8  # the search's next level ...
    train_a_little(model, seed=2)  # ... trained
    backend.load_model_state(model, weights)  # the loop returns the best checkpoint: weights first,
    controller.load_state(state)  # then the controller
    assert controller.compression_rate == 0.5
    torch.testing.assert_close(outputs(model, x), validated, msg="the restored checkpoint is not the model that was validated")

    controller.compression_rate = 0.8
    controller.compression_rate = 0.5
    torch.testing.assert_close(outputs(model, x), validated, msg="compression_rate did not apply to the current weights")


def test_it_keeps_the_level_contract(registry: Registry) -> None:
    controller, model = compress(registry, 0.1)
    check_level_contract(controller, model)


class RebuildsFromAnInitialCopy(WeightClipping):
    """The trap: a setter that rebuilds the weights from a copy taken at construction."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.initial = copy.deepcopy(self.model.state_dict())

    @WeightClipping.compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self.model.load_state_dict(self.initial)
        WeightClipping.compression_rate.fset(self, value)


def test_the_contract_check_catches_a_setter_that_rebuilds_from_a_copy(registry: Registry) -> None:
    config = load_config(config_for(0.1), registry=registry)
    prepared = TorchBackend().prepare_model(DigitsCNN(), config)
    broken = RebuildsFromAnInitialCopy(prepared, config.compression_sections()[0])
    with pytest.raises(AssertionError, match="the restored checkpoint is not the model that was validated"):
        check_level_contract(broken, prepared.module)


def test_a_saved_run_restores_into_a_fresh_model(registry: Registry) -> None:
    controller, model = compress(registry, 0.3)
    train_a_little(model, seed=1)
    x = torch.rand(4, 1, 8, 8)
    restored, fresh = create_compressed_model(DigitsCNN(), config_for(0.0), compression_state=controller.get_state(), registry=registry)
    fresh.load_state_dict(model.state_dict())
    assert restored.compression_rate == 0.3
    torch.testing.assert_close(outputs(fresh, x), outputs(model, x))


# -- strip and export --------------------------------------------------------------------------
def test_strip_gives_a_plain_module_that_computes_the_same(registry: Registry, tmp_path: Path) -> None:
    controller, model = compress(registry, 0.5)
    train_a_little(model, seed=1)
    x = torch.rand(4, 1, 8, 8)
    stripped = controller.strip()
    assert type(stripped.conv1) is nn.Conv2d and not has_transforms(stripped)
    assert has_transforms(model)  # strip works on a copy: training can go on
    torch.testing.assert_close(outputs(stripped, x), outputs(model, x))
    saved = controller.export_model(tmp_path / "clipped.pt")
    torch.testing.assert_close(outputs(torch.load(saved, weights_only=False), x), outputs(model, x))


# -- the adaptive loop, end to end -------------------------------------------------------------
def test_the_adaptive_loop_returns_the_model_it_validated(registry: Registry, tmp_path: Path) -> None:
    """The search ends on a level that failed after a feasible one, so the loop must restore a checkpoint."""
    torch.manual_seed(0)
    train, val = digits(train=480)
    model = DigitsCNN()
    uncompressed = pretrain(model, Trainer(model, train, val), epochs=6)
    config = {
        **config_for(0.1),
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 2.0,
                "initial_training_phase_epochs": 1,
                "patience_epochs": 2,
                "search_strategy": "step",
                "initial_compression_rate_step": 0.8,
                "minimal_compression_rate_step": 0.4,
                "maximal_total_epochs": 6,
            },
        },
    }
    torch.manual_seed(1)
    controller, model = create_compressed_model(model, config, registry=registry)
    trainer = Trainer(model, train, val)
    controller.initialize(trainer.train_batches)
    loop = create_accuracy_aware_training_loop(config, controller, uncompressed, registry=registry, verbose=False)
    model = loop.run(
        model,
        train_epoch_fn=trainer.train_epoch,
        validate_fn=trainer.validate,
        configure_optimizers_fn=trainer.configure_optimizers,
        log_dir=tmp_path / "run",
    )

    statistics = loop.statistics
    assert statistics.feasible
    last_trained = [r for r in statistics.history if r.metric is not None and not r.is_probe][-1]
    assert last_trained.budget is not None and last_trained.budget < 0, "the test needs a search that ends on a failed level"
    assert last_trained.compression_rate != statistics.compression_rate
    level = [r.metric for r in statistics.history if r.metric is not None and r.compression_rate == statistics.compression_rate]
    best = max(level)  # the metric the loop recorded for the level it returns
    assert statistics.compressed_accuracy == best
    assert trainer.validate(model) == best
    assert controller.compression_rate == statistics.compression_rate

    stripped = controller.strip()
    assert trainer.validate(stripped) == best
    x = val[0][:64]
    torch.testing.assert_close(outputs(stripped, x), outputs(model, x))
    exported = controller.export_model(tmp_path / "clipped.onnx")
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (onnx_outputs,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(onnx_outputs, outputs(stripped, x).numpy(), rtol=1e-4, atol=1e-5)


# -- config ------------------------------------------------------------------------------------
def test_the_old_key_name_still_works(registry: Registry) -> None:
    config = load_config({"compression": {"algorithm": "weight_clipping", "params": {"clipped_fraction": 0.5}}}, registry=registry)
    assert config["compression"]["params"] == {"clipping_rate": 0.5}
    assert config.notes


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        ({"clipping_rate": 1}, "$.compression.params.clipping_rate", "1 is greater than or equal to the maximum of 1"),
        ({"cliping_rate": 0.5}, "$.compression.params.cliping_rate", "unknown key 'cliping_rate' (did you mean 'clipping_rate'?)"),
    ],
)
def test_the_schema_catches_mistakes(registry: Registry, params: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"compression": {"algorithm": "weight_clipping", "params": params}}, registry=registry)
    assert [p.path for p in info.value.problems] == [path]
    assert info.value.problems[0].message.startswith(message)
