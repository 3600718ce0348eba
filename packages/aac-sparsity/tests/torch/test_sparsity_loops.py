"""Sparsity under both accuracy-aware loops, end to end on a small CNN and scikit-learn's digits.

Sparsity mixed with filter pruning: tests/integration/torch/test_sparsity_pruning_mix.py.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from aac.core import create_accuracy_aware_training_loop, create_compressed_model
from aac.torch.testing.digits import DigitsCNN, Trainer, digits, pretrain

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def pretrained() -> tuple[DigitsCNN, float, Any, Any]:
    torch.manual_seed(0)
    train, val = digits(train=480)
    model = DigitsCNN()
    accuracy = pretrain(model, Trainer(model, train, val), epochs=4)
    return model, accuracy, train, val


def run(pretrained: tuple[DigitsCNN, float, Any, Any], config: dict[str, Any], log_dir: Path) -> tuple[Any, Any, Any, Trainer]:
    base, accuracy, train, val = pretrained
    torch.manual_seed(1)
    model = copy.deepcopy(base)
    controller, model = create_compressed_model(model, config)
    trainer = Trainer(model, train, val)
    loop = create_accuracy_aware_training_loop(config, controller, accuracy, verbose=False)
    model = loop.run(
        model,
        train_epoch_fn=trainer.train_epoch,
        validate_fn=trainer.validate,
        configure_optimizers_fn=trainer.configure_optimizers,
        log_dir=log_dir,
    )
    return loop, controller, model, trainer


def test_adaptive_loop_searches_the_magnitude_sparsity_level(pretrained: Any, tmp_path: Path) -> None:
    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 3.0,
                "initial_training_phase_epochs": 2,
                "patience_epochs": 1,
                "initial_compression_rate_step": 0.2,
                "minimal_compression_rate_step": 0.1,
                "maximal_total_epochs": 6,
            },
        },
        "compression": {
            "algorithm": "magnitude_sparsity",
            "sparsity_init": 0.2,
            "params": {"sparsity_target": 0.4, "sparsity_target_epoch": 1},
        },
    }
    loop, controller, model, trainer = run(pretrained, config, tmp_path)
    stats = loop.statistics
    assert stats.total_epochs <= 6
    rates = {round(r.compression_rate, 6) for r in stats.history}
    assert len(rates) >= 2  # the search moved the level
    # the returned model, the controller and the measured sparsity agree on the reported rate
    assert controller.compression_rate == pytest.approx(stats.compression_rate)
    assert controller.measured_level() == pytest.approx(stats.compression_rate, abs=1e-3)
    assert trainer.validate(model) == pytest.approx(stats.compressed_accuracy)
    assert (tmp_path / "state.json").exists()


def test_early_exit_loop_with_rb_sparsity(pretrained: Any, tmp_path: Path) -> None:
    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "accuracy_aware_training": {
            "mode": "early_exit",
            "params": {"maximal_relative_accuracy_degradation": 5.0, "maximal_total_epochs": 4},
        },
        "compression": {
            "algorithm": "rb_sparsity",
            "params": {
                "schedule": "exponential",
                "sparsity_init": 0.01,
                "sparsity_target": 0.3,
                "sparsity_steps": 2,
                "sparsity_training_steps": 3,
            },
        },
    }
    loop, controller, model, _ = run(pretrained, config, tmp_path)
    assert loop.statistics.total_epochs <= 4
    assert controller.compression_rate == pytest.approx(loop.statistics.compression_rate)
    assert loop.statistics.feasible
