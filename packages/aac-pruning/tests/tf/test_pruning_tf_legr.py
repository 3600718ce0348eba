"""LeGR on Keras: the same neutral search and ranking as on PyTorch, with the Keras model's own weights and masks."""

import json

import keras
import numpy as np
import pytest

from aac.core import create_compressed_model
from aac.pruning.legr import learn_ranking
from aac.pruning.ranking import LearnedRanking
from aac.tf.testing import compile_classifier, make_data, resnet_like
from aac.tf.transforms import effective_value

SECTION = {
    "algorithm": "filter_pruning",
    "params": {
        "interlayer_ranking_type": "learned_ranking",
        "schedule": "baseline",
        "pruning_target": 0.4,
        "filters_multiple_of": 1,
        "legr_params": {"generations": 10, "population_size": 4, "num_samples": 2, "train_steps": 2},
    },
}


def kept(model, layer: str) -> int:
    kernel = effective_value(model.get_layer(layer), "kernel")
    return int((np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(0) > 0).sum())


def test_the_search_learns_the_ranking_its_score_asks_for_on_keras(tmp_path):
    keras.utils.set_random_seed(0)
    path = tmp_path / "coefficients.json"
    model = resnet_like(size=8, widths=(16, 32))
    controller, model = create_compressed_model(
        model,
        {
            "input_info": {"sample_size": [1, 8, 8, 3]},
            "compression": {**SECTION, "params": {**SECTION["params"], "save_ranking_coeffs_path": str(path)}},
        },
    )
    controller.scheduler.epoch_step()
    identity = kept(model, "s1b0_a_conv")
    weights = [w.copy() for w in model.get_weights()]
    ranking = learn_ranking(controller, lambda model, steps: None, lambda model: kept(model, "s1b0_a_conv"))
    controller.scheduler.epoch_step()
    assert kept(model, "s1b0_a_conv") > identity  # the layer the score protects keeps more filters
    assert controller.compression_rate == pytest.approx(0.4, abs=0.03)  # still the target
    assert controller.interlayer_ranking is ranking and "s1b0_a_conv" in ranking.coefficients
    assert json.loads(path.read_text()) == {k: list(v) for k, v in ranking.coefficients.items()}
    masks = [i for i, v in enumerate(model.variables) if "mask" in v.path]
    assert all(np.array_equal(a, b) for i, (a, b) in enumerate(zip(weights, model.get_weights(), strict=True)) if i not in masks)


def test_candidates_are_trained_and_the_training_undone():
    keras.utils.set_random_seed(0)
    x, y = make_data(samples=64, features=8 * 8 * 3, classes=10)
    x = x.reshape(-1, 8, 8, 3).astype("float32")
    model = compile_classifier(resnet_like(size=8, widths=(16, 32)), learning_rate=0.01, optimizer="sgd")
    controller, model = create_compressed_model(model, {"input_info": {"sample_size": [1, 8, 8, 3]}, "compression": SECTION})
    before = [v.numpy().copy() for v in model.trainable_variables]
    steps = []

    def train_steps(model, count):
        steps.append(count)
        model.fit(x, y, batch_size=32, epochs=1, steps_per_epoch=count, verbose=0)

    ranking = learn_ranking(controller, train_steps, lambda model: -model.evaluate(x, y, verbose=0, return_dict=True)["loss"])
    assert steps == [2] * 10 and isinstance(ranking, LearnedRanking)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.trainable_variables, strict=True))
