"""The digits demo on TensorFlow/Keras: ``digits_net`` (the Keras twin of ``DigitsNet``), ``model.fit`` and
``accuracy_aware_fit`` (core's adaptive loop, one ``fit`` epoch per training epoch)."""

from __future__ import annotations

import argparse
from pathlib import Path

from common import DemoResult, Digits, load_config


def run(args: argparse.Namespace, data: Digits, out: Path) -> DemoResult:
    import keras
    import numpy as np
    import tensorflow as tf

    from aac.core import create_compressed_model
    from aac.pruning.tf.strip import parameter_count
    from aac.tf import accuracy_aware_fit
    from aac.tf.testing import digits_net

    keras.utils.set_random_seed(args.seed)
    tf.config.threading.set_intra_op_parallelism_threads(1)  # the network is tiny: threads only add synchronisation
    config = load_config(args, sample_size=[1, 8, 8, 1])  # Keras: channels last
    x_train, x_val = data.x_train[..., None], data.x_val[..., None]

    def compiled(model: keras.Model, learning_rate: float) -> keras.Model:
        model.compile(keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    def accuracy(model: keras.Model) -> float:
        """Validation accuracy in percent."""
        return 100.0 * float(np.mean(np.argmax(model.predict(x_val, batch_size=256, verbose=0), axis=1) == data.y_val))

    # 1. the uncompressed model
    model = compiled(digits_net(width=args.width), args.lr)
    report = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
        f"[demo] pre-training epoch {epoch + 1}/{args.epochs}: loss {logs['loss']:.4f}"))
    model.fit(x_train, data.y_train, batch_size=args.batch_size, epochs=args.epochs, callbacks=[report], verbose=0)
    baseline = accuracy(model)
    print(f"[demo] uncompressed accuracy: {baseline:.2f}%")

    # 2. the accuracy-aware search: every level starts from a fresh copy of this optimizer
    controller, model = create_compressed_model(model, config)
    compiled(model, args.lr / 3)
    model, statistics = accuracy_aware_fit(
        model, controller, config, (x_train, data.y_train), (x_val, data.y_val), uncompressed_model_accuracy=baseline,
        result_dict_to_val_metric_fn=lambda results: 100.0 * results["accuracy"], batch_size=args.batch_size, log_dir=out)

    # 3. the physically pruned model
    stripped = controller.strip()
    controller.export_model(out / "digits_pruned.keras")
    controller.export_model(out / "digits_pruned_saved_model")
    return DemoResult(
        uncompressed_accuracy=baseline, pruned_accuracy=accuracy(stripped), compression_rate=controller.compression_rate,
        parameters=(parameter_count(model), parameter_count(stripped)),
        statistics=controller.statistics().to_str(), loop_statistics=statistics.to_str(),
        files={"digits_pruned.keras": "stripped model (keras.saving.load_model)",
               "digits_pruned_saved_model": "stripped model as a SavedModel (tf.saved_model.load, TF Serving)"},
    )
