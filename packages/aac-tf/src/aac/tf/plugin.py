"""aac-tf's plugin: registers the TensorFlow/Keras backend. Importing it does not import TensorFlow."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from aac.core.hookspecs import hookimpl
from aac.core.specs import BackendSpec


def claims(model: Any) -> bool:
    """True for a ``keras.Model`` (Sequential, functional or subclassed).

    Keras is only consulted if the caller already imported it: a model of another framework (or a
    plain object) costs a dictionary look-up, and listing plugins never imports TensorFlow.
    """
    keras = sys.modules.get("keras")
    if keras is None:
        return False
    model_class = getattr(keras, "Model", None)
    return model_class is not None and isinstance(model, model_class)


@hookimpl
def aac_backends() -> Iterable[BackendSpec]:
    return [
        BackendSpec(
            name="tf",
            claims=claims,
            factory="aac.tf.backend:TFBackend",
            package="aac-tf",
            description="keras.Model on TensorFlow (Keras 3): Keras graph, .npz checkpoints, tf.summary, .keras/SavedModel export",
        )
    ]
