"""Inference latency, measured the same way for every model the demo compares."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

#: batch sizes of the latency comparison: one image (interactive use) and a throughput-sized batch
LATENCY_BATCHES = (1, 256)
#: untimed calls before the timed ones (first calls allocate and pick kernels)
WARMUP_CALLS = 3


def median_latency_ms(call: Callable[[], object], runs: int) -> float:
    """The median wall time of ``runs`` calls, in milliseconds: robust to the odd slow call of a shared machine."""
    for _ in range(WARMUP_CALLS):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def onnxruntime_latency_ms(path: Path, batches: Sequence[int], runs: int) -> dict[int, float]:
    """Median latency of the ONNX model at ``path`` per batch size, in onnxruntime on one CPU thread.

    One thread for both models: the comparison is about the work the model needs, not about how well
    a tiny network spreads over cores.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    images = np.random.default_rng(0).random((max(batches), *model_input.shape[1:]), dtype=np.float32)
    return {batch: median_latency_ms(lambda batch=batch: session.run(None, {model_input.name: images[:batch]}), runs) for batch in batches}


def onnxruntime_description() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}, CPU, 1 thread"
