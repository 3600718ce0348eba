"""Keras callbacks: the scheduler is stepped and the compression loss is minimised inside model.fit."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from aac.core import CompressionAlgorithm, CompressionLoss, CompressionScheduler, create_compressed_model
from aac.core.statistics import AlgorithmStatistics
from aac.tf import CompressionCallback, CompressionStatisticsCallback, install_compression_loss, uninstall_compression_loss
from aac.tf.testing import compile_classifier, functional_model, sequential_model


class KernelPenalty(CompressionLoss):
    """``weight * sum(kernel**2)`` of one layer (a stand-in for a sparsity regulariser)."""

    def __init__(self, layer, weight: float) -> None:
        self.layer, self.weight = layer, weight

    def forward(self):
        return self.weight * keras.ops.sum(keras.ops.square(self.layer.kernel))


class Recorder(CompressionScheduler):
    def __init__(self) -> None:
        super().__init__()
        self.epochs = 0

    def _on_epoch(self) -> None:
        self.epochs += 1


class Controller(CompressionAlgorithm):
    name = "recorder"

    def __init__(self, model, loss=None) -> None:
        super().__init__(model)
        self._scheduler = Recorder()
        if loss is not None:
            self._loss = loss

    def _collect_statistics(self) -> AlgorithmStatistics:
        return AlgorithmStatistics(self.name, {"epochs": float(self._scheduler.epochs)})


def test_scheduler_is_stepped_per_batch_and_epoch(blobs) -> None:
    model = compile_classifier(sequential_model())
    controller = Controller(model)
    model.fit(blobs[0], blobs[1], epochs=3, batch_size=64, verbose=0, callbacks=[CompressionCallback(controller)])
    assert controller.scheduler.current_step == 3 * 5 - 1  # 320 samples / 64 = 5 batches per epoch
    assert controller.scheduler.epochs == 3 and controller.scheduler.current_epoch == 2


def test_compression_loss_is_added_in_training_and_not_in_evaluation(blobs) -> None:
    x, y = blobs[0], blobs[1]

    class Constant(CompressionLoss):
        def forward(self):
            return keras.ops.convert_to_tensor(5.0)

    model = compile_classifier(sequential_model(), learning_rate=0.0)  # frozen weights: losses are comparable
    plain = model.fit(x, y, epochs=1, batch_size=64, verbose=0).history["loss"][0]
    callback = CompressionCallback(Controller(model, Constant()))
    with_loss = model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[callback]).history["loss"][0]
    assert abs(with_loss - plain - 5.0) < 1e-4
    assert abs(model.evaluate(x, y, verbose=0, return_dict=True)["loss"] - plain) < 1e-4
    uninstall_compression_loss(model)
    assert abs(model.fit(x, y, epochs=1, batch_size=64, verbose=0).history["loss"][0] - plain) < 1e-4


def test_compression_loss_gradients_reach_the_weights(blobs) -> None:
    model = compile_classifier(functional_model(), learning_rate=0.05)
    fc1 = model.get_layer("fc1")
    controller = Controller(model, KernelPenalty(fc1, 10.0))
    start = float(np.square(fc1.kernel.numpy()).sum())
    model.fit(blobs[0], blobs[1], epochs=3, batch_size=64, verbose=0, callbacks=[CompressionCallback(controller)])
    assert float(np.square(fc1.kernel.numpy()).sum()) < 0.2 * start


def test_installing_the_same_loss_twice_keeps_the_traced_step(blobs) -> None:
    model = compile_classifier(sequential_model())
    controller = Controller(model)
    install_compression_loss(model, controller)
    model.fit(blobs[0], blobs[1], epochs=1, verbose=0)
    traced = model.train_function
    install_compression_loss(model, controller)
    assert model.train_function is traced
    install_compression_loss(model, Controller(model))
    assert model.train_function is None


def test_statistics_callback_logs_to_tensorboard_and_history(tmp_path: Path, blobs, registry) -> None:
    import tensorflow as tf

    model = compile_classifier(functional_model())
    controller, model = create_compressed_model(
        model, {"compression": {"algorithm": "tf_toy_pruning", "params": {"target": 0.5}}}, registry=registry
    )
    callbacks = [CompressionCallback(controller), CompressionStatisticsCallback(controller, tmp_path, add_to_logs=True)]
    history = model.fit(blobs[0], blobs[1], epochs=2, batch_size=64, verbose=0, callbacks=callbacks)
    assert history.history["compression/tf_toy_pruning/compression_rate"] == [0.25, 0.5]
    tags = set()
    for file in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            tags.update(v.tag for v in event.summary.value)
    assert "compression/statistics/tf_toy_pruning/masked_channels" in tags
