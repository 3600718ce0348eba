"""The TensorFlow twin of ``kill_resume_worker.py``: one ``accuracy_aware_fit`` run of filter pruning on digits,
killed (SIGKILL) right after its n-th checkpoint write.

    python benchmarks/kill_resume_tf_worker.py LOG_DIR RESULT_JSON [KILL_AT]

The same command line and result file as the PyTorch worker, so ``kill_resume.py --framework tf`` sweeps it
alike. ``accuracy_aware_fit`` takes no ``dump_checkpoint_fn``, so writes are counted where aac-tf writes
every checkpoint file, ``aac.tf.checkpoint.atomic_write``: the kill comes after the file is complete and
before the loop records it, as a crash there would.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

import aac.tf.checkpoint
from aac.core import create_compressed_model
from aac.tf import accuracy_aware_fit
from aac.tf.testing import digits_net

TORCH_WORKER = Path(__file__).resolve().parents[1] / "packages" / "aac-pruning" / "tests" / "kill_resume_worker.py"


def torch_workers_config() -> dict[str, Any]:
    """The PyTorch worker's ``CONFIG``, read from its source (importing it would import torch), with the input
    channels last as Keras has them: both workers run the same compression and the same search."""
    module = ast.parse(TORCH_WORKER.read_text())
    value = next(n.value for n in module.body if isinstance(n, ast.Assign) and [getattr(t, "id", "") for t in n.targets] == ["CONFIG"])
    config: dict[str, Any] = ast.literal_eval(value)
    config["input_info"] = {"sample_size": [1, 8, 8, 1]}
    return config


CONFIG = torch_workers_config()


def compiled(model: keras.Model, learning_rate: float) -> keras.Model:
    model.compile(keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def main(log_dir: str, result: str, kill_at: int | None) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    digits = load_digits()
    x, y = (digits.images[:600] / 16.0).astype(np.float32)[..., None], digits.target[:600]
    model = compiled(digits_net(width=16), 0.01)
    model.fit(x[:450], y[:450], batch_size=50, epochs=5, verbose=0)
    uncompressed = 100.0 * float(model.evaluate(x[450:], y[450:], verbose=0)[1])

    writes = 0
    write_file = aac.tf.checkpoint.atomic_write

    def write_then_maybe_die(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
        nonlocal writes
        write_file(path, write)
        writes += 1
        if writes == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    aac.tf.checkpoint.atomic_write = write_then_maybe_die  # type: ignore[assignment]
    controller, model = create_compressed_model(model, CONFIG)
    model, statistics = accuracy_aware_fit(
        compiled(model, 3e-3),
        controller,
        CONFIG,
        (x[:450], y[:450]),
        (x[450:], y[450:]),
        uncompressed_model_accuracy=uncompressed,
        result_dict_to_val_metric_fn=lambda results: 100.0 * results["accuracy"],
        batch_size=50,
        log_dir=log_dir,
        verbose=False,
    )
    weights = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in model.get_weights())).hexdigest()
    summary: dict[str, Any] = {
        "rate": statistics.compression_rate,
        "metric": statistics.compressed_accuracy,
        "epochs": statistics.total_epochs,
        "weights": weights,
        "writes": writes,
    }
    Path(result).write_text(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
