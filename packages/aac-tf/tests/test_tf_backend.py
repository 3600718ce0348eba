"""TFBackend primitives: checkpoints (weights, optimizer, RNG), learning-rate reset, TensorBoard."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from aac.core.errors import CheckpointError
from aac.tf.backend import LearningRateWarning, TFBackend
from aac.tf.testing import compile_classifier, functional_model, sequential_model
from aac.tf.transforms import Mask, add_transform


def trained(blobs, model=None, **compile_kwargs):
    model = compile_classifier(model or functional_model(), **compile_kwargs)
    model.fit(blobs[0], blobs[1], epochs=1, batch_size=64, verbose=0)
    return model


def draws() -> list[float]:
    return [random.random(), float(np.random.rand()), float(tf.random.get_global_generator().normal(())), float(keras.random.uniform(()))]


def test_checkpoint_round_trip_of_weights_transforms_optimizer_and_rng(tmp_path: Path, blobs) -> None:
    backend = TFBackend()
    model = trained(blobs)
    mask = add_transform(model.get_layer("fc1"), "kernel", Mask("toy", shape=(16,), initial=np.r_[np.zeros(3), np.ones(13)]))
    payload = {
        "format": "aac-checkpoint",
        "version": 1,
        "model": backend.model_state(model),
        "compression_state": {"algorithm": "toy", "levels": [0.5, (1, 2)], "nested": {"ok": True, "none": None}},
        "optimizer": backend.optimizer_state(model.optimizer),
        "rng": backend.rng_state(),
    }
    expected = draws()
    path = tmp_path / "ckpt.npz"
    backend.save_checkpoint(path, payload)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary file left behind
    outputs = model(blobs[2][:8]).numpy()
    optimizer_values = [v.numpy().copy() for v in model.optimizer.variables]

    for variable in model.variables:  # wreck everything, then restore
        variable.assign(tf.zeros_like(variable))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")  # a new, unbuilt optimizer
    random.seed(99), np.random.seed(99), keras.utils.set_random_seed(99)

    loaded = TFBackend().load_checkpoint(path)
    with pytest.raises(CheckpointError, match="never built and no model is bound"):
        TFBackend().load_optimizer_state(model.optimizer, loaded["optimizer"])
    fresh = TFBackend()
    fresh.bind(model)  # as a loop's run does: the unbuilt optimizer is built for this model's variables
    fresh.load_model_state(model, loaded["model"])
    fresh.load_optimizer_state(model.optimizer, loaded["optimizer"])
    fresh.set_rng_state(loaded["rng"])
    assert loaded["compression_state"] == payload["compression_state"]
    assert np.allclose(model(blobs[2][:8]), outputs)
    assert np.array_equal(mask.numpy(), np.r_[np.zeros(3), np.ones(13)])
    assert all(np.allclose(a.numpy(), b) for a, b in zip(model.optimizer.variables, optimizer_values, strict=True))
    assert draws() == expected


def test_model_state_is_a_snapshot_and_checks_the_architecture(blobs) -> None:
    backend = TFBackend()
    model = trained(blobs)
    state = backend.model_state(model)
    before = model(blobs[2][:4]).numpy()
    model.fit(blobs[0], blobs[1], epochs=1, verbose=0)
    backend.load_model_state(model, state)
    assert np.allclose(model(blobs[2][:4]), before)
    with pytest.raises(CheckpointError, match="variables but it has"):
        backend.load_model_state(sequential_model(), state)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign_npz", "missing"])
def test_corrupt_or_missing_checkpoints_raise_checkpoint_error(tmp_path: Path, damage: str, blobs) -> None:
    backend = TFBackend()
    path = tmp_path / "ckpt.npz"
    backend.save_checkpoint(path, {"format": "aac-checkpoint", "model": backend.model_state(functional_model())})
    if damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "foreign_npz":
        np.savez(path, weights=np.ones(3))
    else:
        path.unlink()
    with pytest.raises(CheckpointError, match="corrupt|not an aac|does not exist"):
        backend.load_checkpoint(path)
    assert zipfile  # (the module is what numpy reads .npz files with)


def test_learning_rate_scaling_of_variables_and_keras_schedules(blobs) -> None:
    backend = TFBackend()
    optimizer = keras.optimizers.Adam(0.02)
    backend.scale_learning_rate(optimizer, None, 0.5)
    assert float(optimizer.learning_rate) == pytest.approx(0.01)

    schedules = keras.optimizers.schedules
    cosine = schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=10)
    backend.scale_learning_rate(keras.optimizers.SGD(cosine), None, 0.5)
    assert (cosine.initial_learning_rate, cosine.warmup_target) == pytest.approx((0.05, 0.1))
    exponential = schedules.ExponentialDecay(0.1, 10, 0.5)
    backend.scale_learning_rate(keras.optimizers.SGD(exponential), None, 0.1)
    assert exponential.initial_learning_rate == pytest.approx(0.01)
    piecewise = schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])
    backend.scale_learning_rate(keras.optimizers.SGD(piecewise), None, 0.5)
    assert piecewise.values == pytest.approx([0.05, 0.005, 0.0005])
    assert float(keras.optimizers.SGD(piecewise).learning_rate) == pytest.approx(0.05)

    class Custom(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1

    with pytest.warns(LearningRateWarning, match="Custom"):
        backend.scale_learning_rate(keras.optimizers.SGD(Custom()), None, 0.5)


def test_learning_rate_is_read_from_variables_and_schedules() -> None:
    backend = TFBackend()
    assert backend.learning_rate(keras.optimizers.Adam(0.02)) == pytest.approx(0.02)
    piecewise = keras.optimizers.schedules.PiecewiseConstantDecay([0], [0.1, 0.01])
    optimizer = keras.optimizers.SGD(piecewise)
    assert backend.learning_rate(optimizer) == pytest.approx(0.1)
    optimizer.iterations.assign(5)
    assert backend.learning_rate(optimizer) == pytest.approx(0.01)
    assert backend.learning_rate(None) is None


def test_a_scaled_schedule_reaches_the_traced_training_step(blobs) -> None:
    backend = TFBackend()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.9)
    model = trained(blobs, sequential_model(), optimizer="sgd", learning_rate=schedule)
    assert model.train_function is not None
    backend.bind(model)  # as a loop's run does: the backend now knows the model
    backend.scale_learning_rate(model.optimizer, None, 0.0)
    assert model.train_function is None  # re-traced at the next fit, with the new rate
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(blobs[0], blobs[1], epochs=1, batch_size=64, verbose=0)
    assert all(np.allclose(a, b.numpy()) for a, b in zip(before, model.trainable_weights, strict=True))


def test_step_lr_scheduler_leaves_keras_schedules_to_the_optimizer() -> None:
    class Stepper:
        steps = 0

        def step(self) -> None:
            self.steps += 1

    stepper = Stepper()
    backend = TFBackend()
    backend.step_lr_scheduler(stepper, 1, 0.5)
    backend.step_lr_scheduler(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5), 1, 0.5)
    backend.step_lr_scheduler(None, 1, 0.5)
    assert stepper.steps == 1
    assert (backend.rank(), backend.world_size(), backend.broadcast({"x": 1})) == (0, 1, {"x": 1})
    backend.barrier()


def read_events(directory: Path) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for file in sorted(directory.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                found.setdefault(value.tag, []).append((event.step, number))
    return found


def test_tensorboard_writer_writes_tf_summary_event_files(tmp_path: Path) -> None:
    writer = TFBackend().create_tensorboard_writer(tmp_path / "tb")
    writer.add_scalar("val/accuracy_aware/metric_value", 0.75, 3)
    writer.add_scalar("val/accuracy_aware/metric_value", 0.5, 4)
    writer.flush()
    events = read_events(tmp_path / "tb")
    assert events["val/accuracy_aware/metric_value"] == [(3, 0.75), (4, 0.5)]
