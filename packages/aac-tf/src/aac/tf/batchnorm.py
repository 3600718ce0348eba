"""Batch-norm adaptation for Keras models: re-estimate moving statistics after compression changed the layers before them.

NNCF's ``initializer.batchnorm_adaptation.num_bn_adaptation_samples`` is accepted by every algorithm
section; :meth:`aac.tf.TFCompressionAlgorithm.initialize` runs it for any TF algorithm.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from keras import layers as L

from aac.tf.models import iter_layers


def input_batches(data: Any, batch_size: int, samples: int) -> Iterator[Any]:
    """Model inputs, batch by batch, until ``samples`` samples were produced."""
    if isinstance(data, np.ndarray) or (isinstance(data, tuple) and data and isinstance(data[0], np.ndarray)):
        array = data if isinstance(data, np.ndarray) else data[0]
        data = [array[i : i + batch_size] for i in range(0, len(array), batch_size)]
    seen = 0
    for batch in data:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        yield x
        seen += int(np.shape(x)[0]) if np.ndim(x) else 1
        if seen >= samples:
            return


def adapt_batchnorm(model: Any, batches: list[Any], samples: int) -> bool:
    """Re-estimate batch-norm moving statistics of the (quantized) model over ``samples`` samples: a cumulative
    average over the batches (momentum ``(i - 1) / i`` at batch ``i``) in training mode; nothing else is updated.
    Returns False if there was nothing to adapt."""
    norms = [layer for _, layer in iter_layers(model) if isinstance(layer, L.BatchNormalization)]
    if not norms or not batches:
        return False
    momenta = [layer.momentum for layer in norms]
    frozen = [layer.trainable for layer in norms]
    try:
        seen = 0
        for i, x in enumerate(batches, start=1):
            for layer in norms:
                layer.momentum = (i - 1) / i
                layer.trainable = True
            model(x, training=True)
            seen += int(np.shape(x)[0])
            if seen >= samples:
                break
    finally:
        for layer, momentum, trainable in zip(norms, momenta, frozen, strict=True):
            layer.momentum, layer.trainable = momentum, trainable
    return True
