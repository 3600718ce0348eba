"""Both accuracy-aware loops with magnitude_sparsity on a small Keras model (sklearn's digits), through accuracy_aware_fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")

import keras
from sklearn.datasets import load_digits

from aac.core import create_compressed_model
from aac.tf import accuracy_aware_fit
from aac.tf.testing import compile_classifier, sequential_model

SPARSITY = {
    "algorithm": "magnitude_sparsity",
    "sparsity_init": 0.2,
    "params": {"schedule": "polynomial", "sparsity_target": 0.6, "sparsity_target_epoch": 2, "sparsity_freeze_epoch": 3},
}
INPUT = {"sample_size": [1, 64]}


@pytest.fixture(scope="module")
def digits() -> tuple[Any, list[Any], float]:
    """(x_train, y_train, x_val, y_val), the weights of a trained dense classifier and its accuracy."""
    data = load_digits()
    x, y = (data.data[:900] / 16.0).astype("float32"), data.target[:900].astype("int32")
    split = x[:700], y[:700], x[700:], y[700:]
    keras.utils.set_random_seed(0)
    model = compile_classifier(sequential_model(features=64, classes=10, hidden=32))
    model.fit(split[0], split[1], batch_size=50, epochs=15, verbose=0)
    accuracy = model.evaluate(split[2], split[3], verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.8
    return split, model.get_weights(), accuracy


def _pretrained(weights: list[Any]) -> keras.Model:
    model = compile_classifier(sequential_model(features=64, classes=10, hidden=32), learning_rate=3e-3)
    model.set_weights(weights)
    return model


def test_early_exit_reaches_the_target_within_budget(digits, tmp_path: Path) -> None:
    (x, y, xv, yv), weights, baseline = digits
    config = {
        "input_info": INPUT,
        "compression": SPARSITY,
        "accuracy_aware_training": {
            "mode": "early_exit",
            "params": {"maximal_absolute_accuracy_degradation": 0.05, "maximal_total_epochs": 5},
        },
    }
    controller, model = create_compressed_model(_pretrained(weights), config)
    model, stats = accuracy_aware_fit(
        model, controller, config, (x, y), (xv, yv), uncompressed_model_accuracy=baseline, batch_size=50, log_dir=tmp_path, verbose=False
    )
    assert stats.mode == "early_exit" and stats.feasible and stats.total_epochs <= 5
    assert stats.compression_rate == pytest.approx(0.6)  # the schedule's target
    assert controller.measured_level() == pytest.approx(0.6, abs=0.01)
    assert stats.compressed_accuracy >= baseline - 0.05


def test_adaptive_search_finds_a_rate_and_strips(digits, tmp_path: Path) -> None:
    (x, y, xv, yv), weights, baseline = digits
    config = {
        "input_info": INPUT,
        "compression": {**SPARSITY, "params": {**SPARSITY["params"], "sparsity_target": 0.9}},
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 0.03,
                "initial_training_phase_epochs": 2,
                "patience_epochs": 1,
                "initial_compression_rate_step": 0.2,
                "minimal_compression_rate_step": 0.1,
                "maximal_total_epochs": 6,
            },
        },
    }
    controller, model = create_compressed_model(_pretrained(weights), config)
    model, stats = accuracy_aware_fit(
        model, controller, config, (x, y), (xv, yv), uncompressed_model_accuracy=baseline, batch_size=50, log_dir=tmp_path, verbose=False
    )
    assert stats.mode == "adaptive_compression_level" and stats.total_epochs <= 6
    assert any(r.phase == "search" for r in stats.history)
    assert controller.compression_rate == pytest.approx(stats.compression_rate)  # the loop leaves the reported rate
    assert controller.measured_level() == pytest.approx(stats.compression_rate, abs=0.01)  # getter = what the masks do
    stripped = compile_classifier(controller.strip())
    accuracy = stripped.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(model.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"], abs=1e-6)
    assert (tmp_path / "history.json").exists() and any((tmp_path / "checkpoints").glob("*.npz"))


@pytest.mark.parametrize("style", ["sequential", "functional", "subclassed"])
def test_both_loops_on_every_keras_model_style(digits, tmp_path: Path, style: str) -> None:
    """The same config drives early exit, then the adaptive search, on each of Keras' three model styles."""
    from aac.tf.testing import SubclassedModel, functional_model

    (x, y, xv, yv), _, _ = digits
    builders = {"sequential": sequential_model, "functional": functional_model, "subclassed": SubclassedModel}
    keras.utils.set_random_seed(0)
    model = compile_classifier(builders[style](features=64, classes=10, hidden=32), learning_rate=3e-3)
    model.fit(x, y, batch_size=50, epochs=10, verbose=0)
    baseline = model.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"]
    weights = model.get_weights()
    for mode, params in (
        ("early_exit", {"maximal_total_epochs": 4}),
        ("adaptive_compression_level", {"initial_training_phase_epochs": 1, "patience_epochs": 1, "maximal_total_epochs": 4}),
    ):
        config = {
            "input_info": INPUT,
            "compression": SPARSITY,
            "accuracy_aware_training": {"mode": mode, "params": {"maximal_absolute_accuracy_degradation": 0.1, **params}},
        }
        fresh = compile_classifier(builders[style](features=64, classes=10, hidden=32), learning_rate=3e-3)
        fresh(x[:1])
        fresh.set_weights(weights)
        controller, fresh = create_compressed_model(fresh, config)
        fresh, stats = accuracy_aware_fit(
            fresh,
            controller,
            config,
            (x, y),
            (xv, yv),
            uncompressed_model_accuracy=baseline,
            batch_size=50,
            log_dir=tmp_path / mode,
            verbose=False,
        )
        assert stats.mode == mode and stats.total_epochs <= 4
        assert stats.feasible and stats.compressed_accuracy >= baseline - 0.1
        assert controller.measured_level() == pytest.approx(stats.compression_rate, abs=0.01)  # model and report agree
