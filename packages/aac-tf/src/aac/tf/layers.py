"""A Keras model's layers, inputs and style: what the scope, graph and model modules of aac-tf all read.

The leaf under :mod:`aac.tf.scopes`, :mod:`aac.tf.keras_graph` and :mod:`aac.tf.models`: it knows how
to walk a model's layers (each with its *path*, the names of the layers containing it joined by
:data:`SEPARATOR`) and what ``input_info`` describes, and imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from aac.core.errors import AacError
from aac.core.input_info import input_entries
from aac.tf.keras_internals import is_functional
from aac.tf.transforms import WeightTransform

#: joins the names of nested layers into a layer path (``"block1/conv2d_3"``)
SEPARATOR = "/"

_DTYPES = {
    "float": "float32",
    "float32": "float32",
    "half": "float16",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "double": "float64",
    "float64": "float64",
    "long": "int64",
    "int64": "int64",
    "int": "int32",
    "int32": "int32",
    "bool": "bool",
    "uint8": "uint8",
}


class ModelTraceError(AacError):
    """A model cannot be built, traced into a graph or copied as asked; the message says what to do."""


@dataclass(frozen=True)
class InputSpec:
    """One model input from the config's ``input_info``: shape (batch first, Keras layout), dtype, filler."""

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    filler: str = "zeros"

    @classmethod
    def from_config(cls, input_info: Any) -> list[InputSpec]:
        return [cls(e.shape, _DTYPES[e.kind], e.filler) for e in input_entries(input_info, _DTYPES, ModelTraceError, "Keras")]

    def make(self, batch: int | None = None) -> np.ndarray:
        """A sample array (``batch`` replaces the first dimension)."""
        shape = tuple(1 if d is None else int(d) for d in ((batch, *self.shape[1:]) if batch is not None else self.shape))
        if self.filler == "random":
            rng = np.random.default_rng(0)
            if np.dtype(self.dtype).kind == "f" or self.dtype == "bfloat16":
                return rng.random(shape).astype(self.dtype)
            return rng.integers(0, 2, shape).astype(self.dtype)
        return (np.ones if self.filler == "ones" else np.zeros)(shape, dtype=self.dtype)

    def symbolic(self) -> Any:
        """A symbolic ``keras.KerasTensor`` with a free batch dimension."""
        return keras.KerasTensor((None, *self.shape[1:]), dtype=self.dtype)


def model_style(model: Any) -> str:
    """``"sequential"``, ``"functional"`` or ``"subclassed"``."""
    if isinstance(model, keras.Sequential):
        return "sequential"
    if is_functional(model):
        return "functional"
    return "subclassed"


def sublayers(layer: Any) -> list[Any]:
    """The layers tracked directly by ``layer`` (transforms and metrics left out)."""
    return [s for s in getattr(layer, "_layers", []) if not isinstance(s, (WeightTransform, keras.metrics.Metric))]


def layer_paths(model: Any) -> Iterator[str]:
    """Every layer path of ``model`` (see :mod:`aac.tf.scopes`), outer layers before inner ones."""
    yield from (path for path, _ in iter_layers(model))


def iter_layers(model: Any) -> Iterator[tuple[str, Any]]:
    """``(path, layer)`` for every layer inside ``model`` (each layer once, at its first path)."""
    seen: set[int] = {id(model)}
    stack: list[tuple[str, Any]] = [(layer.name, layer) for layer in reversed(sublayers(model))]
    while stack:
        path, layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield path, layer
        stack.extend((f"{path}{SEPARATOR}{child.name}", child) for child in reversed(sublayers(layer)))


def recorded_input_shapes(model: Any) -> list[tuple[int | None, ...]] | None:
    """Input shapes Keras recorded when the model was built or first called, if they are plain shapes."""
    inputs = getattr(model, "inputs", None) if model_style(model) != "subclassed" else None
    if inputs:
        return [tuple(t.shape) for t in inputs]
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    values = list(shapes.values())
    if values and all(isinstance(v, (tuple, list)) and all(isinstance(d, (int, type(None))) for d in v) for v in values):
        return [tuple(v) for v in values]
    return None


__all__ = [
    "SEPARATOR",
    "InputSpec",
    "ModelTraceError",
    "iter_layers",
    "layer_paths",
    "model_style",
    "recorded_input_shapes",
    "sublayers",
]
