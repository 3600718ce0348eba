"""Both accuracy-aware loops with filter pruning on a small Keras CNN (sklearn's digits), through accuracy_aware_fit."""

import pytest

pytest.importorskip("sklearn")

import keras
from sklearn.datasets import load_digits

from aac.core import create_compressed_model
from aac.pruning.tf.strip import parameter_count
from aac.tf import accuracy_aware_fit
from aac.tf.testing import compile_classifier, digits_net

PRUNING = {
    "algorithm": "filter_pruning",
    "pruning_init": 0.1,
    "params": {"pruning_target": 0.3, "pruning_steps": 2, "filters_multiple_of": 4, "prune_downsample_convs": True},
}


@pytest.fixture(scope="module")
def digits():
    """(x_train, y_train, x_val, y_val) and the weights of a trained digits_net(width=16) with its accuracy."""
    data = load_digits()
    images = (data.images[:600, :, :, None] / 16.0).astype("float32")
    labels = data.target[:600].astype("int32")
    split = images[:450], labels[:450], images[450:], labels[450:]
    keras.utils.set_random_seed(0)
    model = compile_classifier(digits_net(width=16), learning_rate=0.01)
    model.fit(split[0], split[1], batch_size=50, epochs=10, verbose=0)
    accuracy = model.evaluate(split[2], split[3], verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.75
    return split, model.get_weights(), accuracy


def _pretrained(weights):
    model = compile_classifier(digits_net(width=16), learning_rate=3e-3)
    model.set_weights(weights)
    return model


def test_early_exit_stops_once_fully_pruned_within_budget(digits, tmp_path):
    (x, y, xv, yv), weights, baseline = digits
    config = {
        "input_info": {"sample_size": [1, 8, 8, 1]},
        "compression": PRUNING,
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
    assert stats.compression_rate == pytest.approx(0.3, abs=0.05)  # the schedule's target, reached in pruning_steps epochs
    assert stats.compressed_accuracy >= baseline - 0.05


def test_adaptive_search_finds_a_rate_and_strips_to_a_smaller_model(digits, tmp_path):
    (x, y, xv, yv), weights, baseline = digits
    config = {
        "input_info": {"sample_size": [1, 8, 8, 1]},
        "compression": PRUNING,
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 0.03,
                "initial_training_phase_epochs": 2,
                "patience_epochs": 1,
                "initial_compression_rate_step": 0.2,
                "minimal_compression_rate_step": 0.1,
                "maximal_total_epochs": 7,
            },
        },
    }
    controller, model = create_compressed_model(_pretrained(weights), config)
    model, stats = accuracy_aware_fit(
        model, controller, config, (x, y), (xv, yv), uncompressed_model_accuracy=baseline, batch_size=50, log_dir=tmp_path, verbose=False
    )
    assert stats.mode == "adaptive_compression_level" and stats.feasible and stats.total_epochs <= 7
    assert stats.compression_rate > 0.1 and stats.compressed_accuracy >= baseline - 0.03
    # the returned rate is one the run validated within budget (the schedule may already have bracketed the frontier)
    assert any(r.budget is not None and r.budget >= 0 and r.compression_rate == stats.compression_rate for r in stats.history)
    assert stats.stop_reason
    assert controller.compression_rate == pytest.approx(stats.compression_rate, abs=1e-6)  # the reported rate, on the 1e-6 grid
    stripped = compile_classifier(controller.strip())
    accuracy = stripped.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(stats.compressed_accuracy, abs=1e-6)
    assert parameter_count(stripped) < parameter_count(model)
    assert (tmp_path / "history.json").exists() and any((tmp_path / "checkpoints").glob("*.npz"))
