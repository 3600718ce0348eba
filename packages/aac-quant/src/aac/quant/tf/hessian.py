"""Average Hessian traces of Keras weights (Hutchinson's estimator, :mod:`aac.quant.precision.hutchinson`), for HAWQ.

``H v`` is the gradient of ``g . v`` taken by an outer ``tf.GradientTape`` around the one computing ``g``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from aac.quant.precision.hutchinson import average_traces


def labelled_batches(data: Any, batch_size: int, samples: int) -> list[tuple[Any, Any]]:
    """``(inputs, targets)`` batches holding ``samples`` samples: from ``(x, y)`` arrays, or an iterable
    (a ``tf.data.Dataset``) of ``(x, y)`` batches."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
        x, y = data
        data = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    batches = []
    seen = 0
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("hawq needs (inputs, targets) batches: pass (x, y) arrays or a dataset of (x, y) pairs")
        batches.append((batch[0], batch[1]))
        seen += int(np.shape(batch[0])[0])
        if seen >= samples:
            break
    return batches


def _rademacher(variables: list[Any], rng: np.random.Generator) -> Iterator[tf.Tensor]:
    for v in variables:
        yield tf.constant(rng.integers(0, 2, size=tuple(v.shape)) * 2 - 1, dtype=v.dtype)


def hutchinson_traces(
    model: Any,
    variables: Mapping[str, Any],
    batches: list[tuple[Any, Any]],
    criterion: Any,
    criterion_fn: Callable[..., Any] | None,
    iterations: int,
    tolerance: float,
    seed: int = 0,
) -> dict[str, float]:
    """Average Hessian trace of the loss for each of ``variables`` (key -> ``tf.Variable``).

    :param criterion: a Keras loss, ``criterion(targets, outputs)``.
    :param criterion_fn: ``(outputs, targets, criterion) -> loss`` for other layouts.
    """
    if not batches:
        raise ValueError("hawq got no data to estimate Hessian traces on")
    keys = list(variables)
    tensors = [variables[k] for k in keys]
    total = sum(int(np.shape(x)[0]) for x, _ in batches)
    rng = np.random.default_rng(seed)

    def draw() -> list[float]:
        vectors = list(_rademacher(tensors, rng))
        estimate = [0.0] * len(keys)
        for x, y in batches:
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    outputs = model(x, training=False)
                    loss = criterion_fn(outputs, y, criterion) if criterion_fn is not None else criterion(y, outputs)
                gradients = inner.gradient(loss, tensors)
                projection = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(gradients, vectors, strict=True)])
            products = outer.gradient(projection, tensors)
            size = int(np.shape(x)[0])
            for i, (v, hv) in enumerate(zip(vectors, products, strict=True)):
                estimate[i] += float(tf.reduce_sum(v * hv)) * size / total
        return estimate

    traces = average_traces(draw, [int(np.prod(t.shape)) for t in tensors], iterations, tolerance)
    return dict(zip(keys, traces, strict=True))
