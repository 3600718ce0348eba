"""Both accuracy-aware loops end to end on small Keras models, accuracy_aware_fit, and export."""

from __future__ import annotations

import builtins
import json
import logging
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from aac.core import AacError, CallbackError, create_accuracy_aware_training_loop, create_compressed_model
from aac.tf import CompressionCallback, accuracy_aware_fit, has_transforms
from aac.tf.testing import SubclassedModel, compile_classifier, functional_model, sequential_model

#: NNCF's step search with every level trained (no early rejection, so no probes): these tests pin TF's
#: plumbing - a fresh optimizer per level, resume - on a known path; aac-pruning's TF tests run the default search
ADAPTIVE = {
    "mode": "adaptive_compression_level",
    "params": {
        "maximal_absolute_accuracy_degradation": 0.03,
        "initial_training_phase_epochs": 2,
        "patience_epochs": 2,
        "maximal_total_epochs": 9,
        "initial_compression_rate_step": 0.2,
        "minimal_compression_rate_step": 0.1,
        "search_strategy": "step",
        "early_rejection": False,
    },
}
EARLY_EXIT = {"mode": "early_exit", "params": {"maximal_relative_accuracy_degradation": 5.0, "maximal_total_epochs": 4}}


def pretrained(blobs, factory=functional_model, epochs: int = 8):
    model = compile_classifier(factory())
    model.fit(blobs[0], blobs[1], epochs=epochs, batch_size=32, verbose=0)
    return model, model.evaluate(blobs[2], blobs[3], return_dict=True, verbose=0)["accuracy"]


def test_early_exit_through_core_loop_with_model_fit(tmp_path: Path, blobs, registry) -> None:
    """Core's loop with hand-written callbacks around model.fit (what accuracy_aware_fit automates)."""
    x, y, xv, yv = blobs
    model, accuracy = pretrained(blobs, sequential_model)
    config = {"compression": {"algorithm": "tf_toy_pruning", "params": {"target": 0.25, "steps": 2}}, "accuracy_aware_training": EARLY_EXIT}
    controller, model = create_compressed_model(model, config, registry=registry)
    epochs: list[int] = []

    def train_epoch_fn(controller, model, epoch=0, optimizer=None, lr_scheduler=None):
        epochs.append(epoch)
        return model.fit(
            x,
            y,
            epochs=epoch + 1,
            initial_epoch=epoch,
            batch_size=32,
            verbose=0,
            callbacks=[CompressionCallback(controller, epoch_step=False)],
        ).history["loss"][-1]

    def validate_fn(model, epoch=0):
        return model.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"]

    loop = create_accuracy_aware_training_loop(config, controller, accuracy, registry=registry, verbose=False)
    returned = loop.run(model, train_epoch_fn=train_epoch_fn, validate_fn=validate_fn, log_dir=tmp_path)
    statistics = loop.statistics
    assert returned is model and statistics.mode == "early_exit"
    assert statistics.feasible and statistics.compression_rate == 0.25  # the schedule reached its target
    assert epochs == [0, 1]  # stopped as soon as fully compressed within budget
    assert controller.scheduler.current_step == 2 * 10 - 1  # stepped per batch by the callback
    assert {p.suffix for p in (tmp_path / "checkpoints").iterdir()} == {".npz"}


def test_early_exit_without_compression_section(tmp_path: Path, blobs, registry) -> None:
    x, y, xv, yv = blobs
    model, accuracy = pretrained(blobs, sequential_model, epochs=2)
    config = {"accuracy_aware_training": EARLY_EXIT}
    controller, model = create_compressed_model(model, config, registry=registry)
    assert controller.name == "no_compression"
    _, statistics = accuracy_aware_fit(
        model,
        controller,
        config,
        (x, y),
        (xv, yv),
        uncompressed_model_accuracy=accuracy,
        log_dir=tmp_path,
        registry=registry,
        verbose=False,
    )
    assert statistics.feasible


def test_adaptive_search_with_accuracy_aware_fit(tmp_path: Path, blobs, registry) -> None:
    x, y, xv, yv = blobs
    model, accuracy = pretrained(blobs)
    config = {"compression": {"algorithm": "tf_toy_pruning", "params": {"target": 0.2, "steps": 2}}, "accuracy_aware_training": ADAPTIVE}
    controller, model = create_compressed_model(model, config, registry=registry)
    optimizers = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if not optimizers or optimizers[-1] is not self.model.optimizer:
                optimizers.append(self.model.optimizer)

    model, statistics = accuracy_aware_fit(
        model,
        controller,
        config,
        (x, y),
        (xv, yv),
        uncompressed_model_accuracy=accuracy,
        batch_size=32,
        callbacks=[Spy()],
        log_dir=tmp_path,
        registry=registry,
        verbose=True,
    )
    assert statistics.mode == "adaptive_compression_level" and statistics.total_epochs <= 9
    assert statistics.feasible and statistics.compression_rate >= 0.2
    assert controller.compression_rate == pytest.approx(statistics.compression_rate)
    levels = {r.compression_rate for r in statistics.history}
    assert len(levels) >= 3  # phase 1 (0.1, 0.2) and at least one searched level
    assert len(optimizers) >= 2 and len({id(o) for o in optimizers}) == len(optimizers)  # a fresh optimizer per level
    # the returned model really is at the reported rate and accuracy
    assert model.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"] == pytest.approx(statistics.compressed_accuracy)
    assert controller.masked_channels() == round(statistics.compression_rate * 16) * 2
    # TensorBoard events written through tf.summary, and the run's files
    tags = set()
    for file in (tmp_path / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            tags.update(v.tag for v in event.summary.value)
    assert {"val/accuracy_aware/metric_value", "compression/statistics/tf_toy_pruning/masked_channels"} <= tags
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["phase"] == "done" and all(k["file"].endswith(".npz") for k in state["kept"].values())

    # running again on the finished log_dir restores the result without training
    weights = [w.numpy().copy() for w in model.weights]
    for w in model.trainable_weights:
        w.assign(tf.zeros_like(w))
    _, again = accuracy_aware_fit(
        model,
        controller,
        config,
        (x, y),
        (xv, yv),
        uncompressed_model_accuracy=accuracy,
        batch_size=32,
        log_dir=tmp_path,
        registry=registry,
        verbose=False,
    )
    assert again.compression_rate == statistics.compression_rate and again.total_epochs == statistics.total_epochs
    assert all(np.allclose(a, b.numpy()) for a, b in zip(weights, model.weights, strict=True))


@pytest.fixture
def without_tensorboard(monkeypatch):
    """As if the tensorboard package were not installed (the aac-tf test session has none; elsewhere it is hidden)."""
    for name in [n for n in sys.modules if n.split(".")[0] == "tensorboard"]:
        monkeypatch.delitem(sys.modules, name)
    real_import = builtins.__import__

    def guarded_import(name, *args, **kwargs):
        if name.split(".")[0] == "tensorboard":
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded_import)
    monkeypatch.setattr("aac.tf.summary._noted", False)


def test_the_loop_writes_tensorboard_events_without_tensorboard(tmp_path: Path, blobs, registry, without_tensorboard, caplog) -> None:
    """Issue 11: tf.summary.scalar needs the tensorboard package; aac's writer does not, and one note says how to view the files."""
    with pytest.raises(ImportError):
        import tensorboard  # noqa: F401
    x, y, xv, yv = blobs
    model, accuracy = pretrained(blobs, sequential_model, epochs=2)
    config = {"compression": {"algorithm": "tf_toy_pruning", "params": {"target": 0.25, "steps": 2}}, "accuracy_aware_training": EARLY_EXIT}
    controller, model = create_compressed_model(model, config, registry=registry)
    with caplog.at_level(logging.INFO, logger="aac"):
        _, statistics = accuracy_aware_fit(
            model,
            controller,
            config,
            (x, y),
            (xv, yv),
            uncompressed_model_accuracy=accuracy,
            batch_size=32,
            log_dir=tmp_path,
            registry=registry,
            verbose=True,
        )
    assert statistics.total_epochs >= 1
    notes = [r.getMessage() for r in caplog.records if "pip install tensorboard" in r.getMessage()]
    assert notes == [
        f"[aac] TensorBoard event files are written to {tmp_path / 'tensorboard'}; to view them: pip install "
        f"tensorboard (or 'aac-tf[tensorboard]') and run tensorboard --logdir {tmp_path / 'tensorboard'}"
    ]
    scalars = {}
    for file in (tmp_path / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            for value in event.summary.value:  # what tf.summary.scalar writes: a float tensor tagged for the scalars plugin
                assert value.metadata.plugin_data.plugin_name == "scalars"
                scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    assert scalars["val/accuracy_aware/metric_value"][0] == (0, pytest.approx(accuracy, abs=1e-6))
    assert "compression/statistics/tf_toy_pruning/masked_channels" in scalars


def test_accuracy_aware_fit_refuses_what_it_cannot_do_right(blobs, registry) -> None:
    x, y, xv, yv = blobs
    config = {"compression": {"algorithm": "tf_toy_pruning"}, "accuracy_aware_training": EARLY_EXIT}
    model = compile_classifier(sequential_model())
    controller, model = create_compressed_model(model, config, registry=registry)
    with pytest.raises(AacError, match="validation_dataset"):
        accuracy_aware_fit(model, controller, config, (x, y), uncompressed_model_accuracy=0.9, registry=registry)
    with pytest.raises(AacError, match="uncompressed_model_accuracy"):
        accuracy_aware_fit(model, controller, config, (x, y), (xv, yv), registry=registry)
    with pytest.raises(AacError, match="not compiled"):
        accuracy_aware_fit(sequential_model(), controller, config, (x, y), (xv, yv), uncompressed_model_accuracy=0.9, registry=registry)
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent")],
    )
    with pytest.raises(CallbackError, match=r"several metrics \['accuracy', 'xent'\].*result_dict_to_val_metric_fn"):
        accuracy_aware_fit(model, controller, config, (x, y), (xv, yv), uncompressed_model_accuracy=0.9, registry=registry, verbose=False)


def test_accuracy_aware_fit_takes_tf_data_and_a_metric_function(tmp_path: Path, blobs, registry) -> None:
    x, y, xv, yv = blobs
    model, accuracy = pretrained(blobs, sequential_model, epochs=4)
    config = {
        "compression": {"algorithm": "tf_toy_pruning", "params": {"target": 0.25, "steps": 1}},
        "accuracy_aware_training": {
            "mode": "early_exit",
            "params": {"maximal_absolute_accuracy_degradation": 0.3, "maximal_total_epochs": 2},
        },
    }
    controller, model = create_compressed_model(model, config, registry=registry)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(64)
    model, statistics = accuracy_aware_fit(
        model,
        controller,
        config,
        train,
        val,
        uncompressed_model_accuracy=accuracy,
        result_dict_to_val_metric_fn=lambda r: r["accuracy"],
        log_dir=tmp_path,
        registry=registry,
        verbose=False,
    )
    assert statistics.feasible and statistics.compression_rate == 0.25 and statistics.total_epochs == 1


@pytest.mark.parametrize("factory", [functional_model, SubclassedModel])
def test_export_of_the_stripped_model_reloads_with_equal_outputs(tmp_path: Path, factory, blobs, registry) -> None:
    model = compile_classifier(factory())
    model(blobs[2][:2])
    controller, model = create_compressed_model(
        model, {"compression": {"algorithm": "tf_toy_pruning", "params": {"target": 0.5}}}, registry=registry
    )
    controller.compression_rate = 0.5
    assert controller.masked_channels() > 0
    sample = blobs[2][:16]
    expected = model(sample).numpy()

    keras_file = controller.export_model(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(keras_file)
    assert not has_transforms(reloaded) and np.allclose(reloaded(sample), expected, atol=1e-5)

    saved_model = controller.export_model(tmp_path / "saved_model")
    served = tf.saved_model.load(str(saved_model))
    assert np.allclose(served.serve(sample), expected, atol=1e-5)

    stripped = controller.strip()
    assert not has_transforms(stripped) and has_transforms(model)  # the training model keeps its masks
    kernel = next(lr for lr in stripped._flatten_layers() if lr.name == "fc1").kernel.numpy()
    assert int((np.abs(kernel).sum(axis=0) == 0).sum()) == 8  # masked columns are baked in as zeros
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "saved_model"]  # nothing temporary left


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_with_its_optimizer_state(tmp_path: Path, blobs, registry) -> None:
    x, y, xv, yv = blobs
    model, accuracy = pretrained(blobs, sequential_model, epochs=3)
    params = {**ADAPTIVE["params"], "initial_training_phase_epochs": 4, "maximal_total_epochs": 5}
    config = {
        "compression": {"algorithm": "tf_toy_pruning", "params": {"target": 0.2, "steps": 4}},
        "accuracy_aware_training": {"mode": "adaptive_compression_level", "params": params},
    }
    controller, model = create_compressed_model(model, config, registry=registry)

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:  # the third epoch trains, then the process "dies" before the loop records it
                raise Interrupt

    with pytest.raises(Interrupt):
        accuracy_aware_fit(
            model,
            controller,
            config,
            (x, y),
            (xv, yv),
            uncompressed_model_accuracy=accuracy,
            batch_size=32,
            callbacks=[Crash()],
            log_dir=tmp_path,
            registry=registry,
            verbose=False,
        )
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epochs"] == 2 and state["last_checkpoint"] == "last_epoch00002.npz"

    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append((epoch, int(self.model.optimizer.iterations.numpy())))

    _, statistics = accuracy_aware_fit(
        model,
        controller,
        config,
        (x, y),
        (xv, yv),
        uncompressed_model_accuracy=accuracy,
        batch_size=32,
        callbacks=[Spy()],
        log_dir=tmp_path,
        registry=registry,
        verbose=False,
    )
    assert seen[0] == (2, 2 * 10)  # resumed at epoch 2 with the optimizer's 20 steps restored, not a fresh optimizer
    assert statistics.total_epochs == 5 and [e for e, _ in seen] == [2, 3, 4]
    assert [r.epoch for r in statistics.history if not r.is_probe] == [0, 1, 2, 3, 4, 5]
