"""The digits demo on TensorFlow/Keras: ``digits_net`` (the Keras twin of ``DigitsNet``), ``model.fit`` and
``accuracy_aware_fit`` (core's adaptive loop, one ``fit`` epoch per training epoch).

One process only (torchrun is PyTorch's launcher). There is no ONNX exporter for Keras among the demo's
dependencies, so latency is measured in TensorFlow itself and MACs are counted from the layers.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from common import Digits, epochs_per_optimizer, load_config
from measure import LATENCY_BATCHES, median_latency_ms
from report import Comparison, DemoResult

PRUNED_KERAS = "digits_pruned.keras"
PRUNED_SAVED_MODEL = "digits_pruned_saved_model"
FILES = {
    PRUNED_KERAS: "the stripped, physically smaller model (keras.saving.load_model)",
    f"{PRUNED_SAVED_MODEL}/*": "the stripped model as a SavedModel (tf.saved_model.load, TF Serving)",
}
#: AdamW's weight decay in pre-training
WEIGHT_DECAY = 1e-4
#: share of pre-training spent warming the learning rate up to its peak, as PyTorch's OneCycleLR does
WARMUP_SHARE = 0.3


def run(args: argparse.Namespace, data: Digits, out: Path) -> DemoResult:
    from aac.core import create_compressed_model
    from aac.pruning.tf.strip import parameter_count
    from aac.tf import accuracy_aware_fit
    from aac.tf.testing import digits_net

    keras.utils.set_random_seed(args.seed)
    tf.config.threading.set_intra_op_parallelism_threads(1)  # the network is tiny: threads only add synchronisation
    tf.config.threading.set_inter_op_parallelism_threads(1)
    config = load_config(args, sample_size=[1, 8, 8, 1])  # Keras: channels last
    x_train, x_val, x_test = data.x_train[..., None], data.x_val[..., None], data.x_test[..., None]
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    out.mkdir(parents=True, exist_ok=True)

    # 1. the uncompressed model, trained to convergence under a warm-up + cosine learning-rate schedule
    model = compiled(
        digits_net(width=args.width), keras.optimizers.AdamW(pretraining_schedule(args, steps_per_epoch), weight_decay=WEIGHT_DECAY)
    )
    report = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: print(f"[demo] pre-training epoch {epoch + 1}/{args.epochs}: loss {logs['loss']:.3e}")
    )
    model.fit(x_train, data.y_train, batch_size=args.batch_size, epochs=args.epochs, callbacks=[report], verbose=0)
    original_val, original_test = accuracy(model, x_val, data.y_val), accuracy(model, x_test, data.y_test)
    print(f"[demo] uncompressed model: validation accuracy {original_val:.2f}%, test accuracy {original_test:.2f}%")
    original_parameters, original_macs = parameter_count(model), macs_per_image(model)
    original_ms = latency_ms(model, args.latency_runs)

    # 2. the accuracy-aware search: every level starts from a fresh copy of this optimizer, so its schedule
    #    anneals the learning rate over each level's epochs, as the PyTorch demo's does
    controller, model = create_compressed_model(model, config)
    fine_tuning_steps = epochs_per_optimizer(config) * steps_per_epoch
    compiled(model, keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.lr, fine_tuning_steps)))
    model, statistics = accuracy_aware_fit(
        model,
        controller,
        config,
        (x_train, data.y_train),
        (x_val, data.y_val),
        uncompressed_model_accuracy=original_val,
        result_dict_to_val_metric_fn=lambda results: 100.0 * results["accuracy"],
        batch_size=args.batch_size,
        log_dir=out,
    )

    # 3. the physically pruned model
    stripped = controller.strip()
    controller.export_model(out / PRUNED_KERAS)
    controller.export_model(out / PRUNED_SAVED_MODEL)
    compressed_ms = latency_ms(stripped, args.latency_runs)
    return DemoResult(
        test_accuracy=Comparison(original_test, accuracy(stripped, x_test, data.y_test)),
        validation_accuracy=Comparison(statistics.uncompressed_accuracy, statistics.compressed_accuracy),
        compression_rate=statistics.compression_rate,
        parameters=Comparison(original_parameters, parameter_count(stripped)),
        macs=Comparison(original_macs, macs_per_image(stripped)),
        macs_counted_by="Conv2D and Dense layers of the Keras models",
        latency_ms={batch: Comparison(original_ms[batch], compressed_ms[batch]) for batch in LATENCY_BATCHES},
        latency_measured_with=f"TensorFlow {tf.__version__} tf.function, CPU, 1 thread",
        latency_runs=args.latency_runs,
        statistics=controller.statistics().to_str(),
        loop_statistics=statistics.to_str(),
        files=FILES,
        processes={"world_size": 1, "backend": None, "device": "cpu", "train_images_per_process": [len(x_train)]},
    )


def compiled(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> keras.Model:
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def pretraining_schedule(args: argparse.Namespace, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """A linear warm-up to ``--lr``, then a cosine to zero: the learning rate settles the model into its minimum."""
    total = args.epochs * steps_per_epoch
    warmup = int(WARMUP_SHARE * total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=args.lr, warmup_steps=warmup)


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy in percent."""
    predicted = np.argmax(model.predict(images, batch_size=256, verbose=0), axis=1)
    return 100.0 * int(np.sum(predicted == labels)) / len(labels)


def macs_per_image(model: keras.Model) -> int:
    """Multiply-accumulates of one image through the Conv2D and Dense layers: each kernel's size times the
    positions it is applied at. (Keras has no counter of its own; the demo's model has no other weighted layers.)"""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            total += int(np.prod(layer.kernel.shape)) * height * width
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def latency_ms(model: keras.Model, runs: int, batches: Sequence[int] = LATENCY_BATCHES) -> dict[int, float]:
    """Median latency of a compiled inference call (``tf.function``) per batch size."""
    infer = tf.function(lambda images: model(images, training=False))
    images = np.random.default_rng(0).random((max(batches), *model.input_shape[1:]), dtype=np.float32)
    inputs = {batch: tf.constant(images[:batch]) for batch in batches}
    return {batch: median_latency_ms(lambda batch=batch: infer(inputs[batch]), runs) for batch in batches}
