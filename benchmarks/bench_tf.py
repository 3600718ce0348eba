"""aac benchmarks on TensorFlow/Keras: plain Keras next to the same model with aac's weight transforms.

    python benchmarks/bench_tf.py [--quick] [--case NAME ...] [--json PATH] [--threads N]

Cases (each ratio is measured side by side in one process, alternating the two variants; the ratio
is the median of the per-round ratios, so load on a shared machine hits both sides alike):

* ``tf_training/plain_keras``: seconds per ``model.fit`` epoch of a CIFAR-sized Keras ResNet - the
  plain-Keras baseline the other TensorFlow cases are relative to;
* ``tf_training_overhead/<algorithm>``: the same epoch with the algorithm's transforms (channel masks on
  every Conv2D/Dense kernel and bias, and on batch norms for filter pruning) vs plain Keras - target <= 1.10x;
* ``tf_inference_latency/<algorithm>@<rate>``: ``predict_on_batch`` latency of the stripped model vs the
  original. ``filter_pruning`` strips to a physically smaller model: target latency ratio <= 1.25 x its
  FLOPs ratio, as for PyTorch (rates 0.3, 0.5, 0.7); ``tf_toy_pruning`` only folds its masks: parity,
  <= 1.10x.

Algorithms come from ``TRAINING_OVERHEAD`` / ``LATENCY``: ``filter_pruning`` (aac-pruning) and
``tf_toy_pruning`` (aac.tf.testing). ``benchmarks/run.py`` runs these cases too (``TF_CASES``: plain
dicts with the fields of its ``Measurement``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import numpy as np
import tensorflow as tf

import aac.tf.plugin
from aac.core import Registry, create_compressed_model, get_plugin_manager
from aac.core.statistics import format_table
from aac.pruning.tf.strip import parameter_count
from aac.tf.testing import TFToyPlugin
from aac.tf.transforms import iter_transforms

OVERHEAD_TARGET = 1.10
LATENCY_TARGET = 1.10  # a stripped model of the original size (masks folded)
LATENCY_SLACK = 1.25  # a physically smaller model: latency ratio <= LATENCY_SLACK x FLOPs ratio
INPUT = (32, 32, 3)
CLASSES = 10
BATCH = 32

#: prune everything prunable, in blocks of 16 channels (the vector width of AVX-512), as benchmarks/run.py does
PRUNING = {"algorithm": "filter_pruning", "params": {"prune_downsample_convs": True, "prune_first_conv": True, "filters_multiple_of": 16}}

#: algorithm -> config section whose transforms the training-overhead case measures
TRAINING_OVERHEAD: dict[str, dict[str, Any]] = {
    "filter_pruning": {**PRUNING, "pruning_init": 0.5},
    "tf_toy_pruning": {"algorithm": "tf_toy_pruning", "params": {"target": 0.5, "steps": 1}},
}
#: algorithm -> (config section, rates at which the stripped model is timed)
LATENCY: dict[str, tuple[dict[str, Any], tuple[float, ...]]] = {
    "filter_pruning": (PRUNING, (0.3, 0.5, 0.7)),
    "tf_toy_pruning": ({"algorithm": "tf_toy_pruning", "params": {"target": 0.5}}, (0.5,)),
}


def _registry() -> Registry:
    """The installed plugins (aac-tf among them) plus the TensorFlow toy algorithm, registered in code."""
    manager = get_plugin_manager(plugins=[TFToyPlugin()])
    if not manager.is_registered(aac.tf.plugin):  # aac-tf importable but not installed as a distribution
        manager.register(aac.tf.plugin, name="tf")
    return Registry(manager)


def resnet(widths: tuple[int, ...] = (64, 128, 256), blocks: int = 2) -> keras.Model:
    """A CIFAR-sized ResNet (basic blocks, batch norm, projection shortcuts) - the TF twin of run.py's model."""
    inputs = keras.Input(INPUT, name="image")
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for stage, width in enumerate(widths):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            y = keras.layers.Conv2D(width, 3, stride, padding="same", use_bias=False)(x)
            y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
            y = keras.layers.BatchNormalization()(keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(y))
            shortcut = x
            if stride != 1 or x.shape[-1] != width:
                shortcut = keras.layers.BatchNormalization()(keras.layers.Conv2D(width, 1, stride, use_bias=False)(x))
            x = keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x), name="resnet_cifar")


def _compiled(model: keras.Model) -> keras.Model:
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _twin(model: keras.Model) -> keras.Model:
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def _config(section: dict[str, Any]) -> dict[str, Any]:
    return {"input_info": {"sample_size": [1, *INPUT]}, "compression": copy.deepcopy(section)}


def _alternate(first: Callable[[], None], second: Callable[[], None], repeats: int) -> tuple[float, float, float]:
    """Median seconds of ``first`` and ``second``, timed back to back after one warm-up call each, and the
    median of the per-round ratios ``second / first`` (a load spike slows both calls of a round alike)."""
    first(), second()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        first()
        middle = time.perf_counter()
        second()
        rounds.append((middle - start, time.perf_counter() - middle))
    return (statistics.median(a for a, _ in rounds), statistics.median(b for _, b in rounds), statistics.median(b / a for a, b in rounds))


def _measurement(
    case: str, value: float, unit: str, target: str = "", passed: bool | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"case": case, "value": value, "unit": unit, "target": target, "passed": passed, "details": details or {}}


def _data(steps: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((steps * BATCH, *INPUT), dtype=np.float32), rng.integers(0, CLASSES, steps * BATCH)


def training(quick: bool) -> list[dict[str, Any]]:
    """Plain-Keras epoch time (the baseline) and, per algorithm, the masked/plain ratio."""
    repeats, steps = (5, 4) if quick else (9, 8)
    x, y = _data(steps)
    registry = _registry()
    results = []
    for algorithm, section in TRAINING_OVERHEAD.items():
        keras.utils.set_random_seed(0)
        plain = _compiled(resnet((32, 64, 128)))  # half the latency case's widths, as run.py's training case
        compressed = _compiled(_twin(plain))
        controller, compressed = create_compressed_model(compressed, _config(section), registry=registry)
        controller.scheduler.epoch_step()  # the schedule's first level: masks are set, as during training

        def epoch(model: keras.Model) -> Callable[[], None]:
            return lambda: model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

        plain_s, masked_s, ratio = _alternate(epoch(plain), epoch(compressed), repeats)
        if not results:
            results.append(
                _measurement(
                    "tf_training/plain_keras",
                    plain_s,
                    "s/epoch",
                    details={"steps": steps, "batch": BATCH, "parameters": plain.count_params(), "ms_per_step": 1000 * plain_s / steps},
                )
            )
        results.append(
            _measurement(
                f"tf_training_overhead/{algorithm}",
                ratio,
                "x plain",
                f"<= {OVERHEAD_TARGET}",
                ratio <= OVERHEAD_TARGET,
                {
                    "plain_epoch_s": plain_s,
                    "compressed_epoch_s": masked_s,
                    "transforms": sum(1 for _ in iter_transforms(compressed)),
                    "steps": steps,
                    "batch": BATCH,
                },
            )
        )
    return results


def inference_latency(quick: bool) -> list[dict[str, Any]]:
    """Latency of the stripped model vs the original; for a physically smaller model, next to its FLOPs ratio."""
    repeats = 5 if quick else 11
    x = np.random.default_rng(1).random((BATCH, *INPUT), dtype=np.float32)
    registry = _registry()
    results = []
    for algorithm, (section, rates) in LATENCY.items():
        keras.utils.set_random_seed(0)
        original = resnet()
        controller, _ = create_compressed_model(_twin(original), _config(section), registry=registry)
        for rate in rates:
            controller.compression_rate = rate
            stripped = controller.strip()
            tables = controller.statistics()[algorithm].tables
            flops = {row[0]: row for row in tables[0].rows}.get("FLOPs") if tables else None
            flops_ratio = flops[2] / flops[1] if flops else None
            target = LATENCY_TARGET if flops_ratio is None else LATENCY_SLACK * flops_ratio

            def infer(model: keras.Model) -> Callable[[], None]:
                def run() -> None:
                    for _ in range(3):
                        model.predict_on_batch(x)

                return run

            original_s, stripped_s, ratio = _alternate(infer(original), infer(stripped), repeats)
            details = {
                "original_s": original_s,
                "stripped_s": stripped_s,
                "batch": len(x),
                "measured_rate": controller.compression_rate,
                "params": {"original": parameter_count(original), "stripped": parameter_count(stripped)},
            }
            if flops_ratio is not None:
                details["flops_ratio"] = flops_ratio
            label = f"<= {LATENCY_TARGET}" if flops_ratio is None else f"<= {LATENCY_SLACK} x FLOPs ratio = {target:.3f}"
            results.append(_measurement(f"tf_inference_latency/{algorithm}@{rate}", ratio, "x original", label, ratio <= target, details))
    return results


def set_threads(threads: int | None) -> None:
    """TensorFlow's intra-op threads (before its first operation); None keeps its default."""
    if threads is not None and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)


#: name -> case; ``benchmarks/run.py`` runs them with ``Measurement(**d) for d in case(settings.quick)``
TF_CASES: dict[str, Callable[[bool], list[dict[str, Any]]]] = {
    "tf_training": training,
    "tf_inference_latency": inference_latency,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(TF_CASES), help="run only these cases (repeatable)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (noisier)")
    parser.add_argument("--json", type=Path, default=Path("runs") / "bench" / "results_tf.json", help="where to write the results")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: TensorFlow's choice)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    results = [m for name in (args.case or TF_CASES) for m in TF_CASES[name](args.quick)]
    rows = [
        (m["case"], round(m["value"], 3), m["unit"], m["target"] or "-", {True: "ok", False: "MISSED", None: "-"}[m["passed"]])
        for m in results
    ]
    print(format_table(("case", "value", "unit", "target", "result"), rows))
    for m in results:
        print(f"  {m['case']}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m["details"].items()))
    report = {
        "machine": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "settings": {"quick": args.quick},
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0 if all(m["passed"] is not False for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
