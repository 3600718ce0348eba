"""What the TensorFlow backend knows about a Keras model: its style, its layers, its inputs and its graph.

:func:`prepare_model` is what ``create_compressed_model`` calls: it builds the model if needed and
returns a :class:`TFModel`, the object algorithm factories receive. The neutral graph
(:attr:`TFModel.graph`) is built on first use, because only structured algorithms (filter pruning)
need it: Sequential and functional models always have one; a subclassed model is traced by calling
its ``call`` on symbolic Keras tensors, which works when ``call`` uses Keras layers and ``keras.ops``
(raw ``tf.*`` functions cannot take symbolic tensors - the error says so and names the class).

:func:`copy_model` makes an independent copy (architecture, weights and transforms), which stripping
uses so that the model being trained is never modified; it can also change layer configs and
weights on the way, which is how a pruned model becomes physically smaller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras.src.models.functional import Functional

from aac.core.errors import AacError
from aac.core.graph import Graph
from aac.tf.scopes import SEPARATOR, ScopeIndex, ScopeSelection
from aac.tf.transforms import (
    TransformError,
    WeightTransform,
    add_transform,
    cut_transforms,
    iter_transforms,
    transformed_weights,
    transforms_of,
    weight_variable,
)

_DTYPES = {"float": "float32", "float32": "float32", "half": "float16", "float16": "float16", "bfloat16": "bfloat16",
           "double": "float64", "float64": "float64", "long": "int64", "int64": "int64", "int": "int32",
           "int32": "int32", "bool": "bool", "uint8": "uint8"}


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
        entries = input_info if isinstance(input_info, list) else [input_info] if input_info else []
        specs = []
        for index, entry in enumerate(entries):
            kind = entry.get("type", "float")
            if kind not in _DTYPES:
                raise ModelTraceError(f"input_info[{index}].type '{kind}' is not a dtype aac knows; use one of {sorted(_DTYPES)}")
            specs.append(cls(tuple(entry["sample_size"]), _DTYPES[kind], entry.get("filler", "zeros")))
        return specs

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
    if isinstance(model, Functional):
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


def ensure_built(model: Any, inputs: Sequence[InputSpec]) -> None:
    """Build ``model`` from ``inputs`` if it is not built yet (its variables must exist to be compressed)."""
    if model.built and (model_style(model) != "subclassed" or model.weights or not inputs):
        return
    if not inputs:
        raise ModelTraceError(
            f"{type(model).__name__} is not built yet, so its layers have no weights to compress: call it once on a "
            'batch (model(x)) before compressing it, or add "input_info": {"sample_size": [1, ...]} to the config'
        )
    samples = [spec.make() for spec in inputs]
    try:
        if model_style(model) == "sequential" and len(samples) == 1:
            model.build((None, *samples[0].shape[1:]))  # a free batch dimension: training batches differ from the sample
        else:
            model(samples[0] if len(samples) == 1 else samples, training=False)
    except Exception as exc:
        raise ModelTraceError(
            f"building {type(model).__name__} from input_info shapes {[list(s.shape) for s in inputs]} failed: {exc}. "
            "Check that input_info.sample_size matches what the model expects (batch dimension first, Keras layout)."
        ) from exc


@dataclass
class TFModel:
    """What the TensorFlow backend hands to algorithm factories: the user's model plus what was learned about it.

    :ivar model: the user's ``keras.Model``; algorithms modify it in place and it is what the user gets back.
    :ivar scopes: the layer paths, for ``ignored_scopes`` / ``target_scopes``.
    :ivar inputs: the ``input_info`` inputs, or the shapes the model recorded when it was built.
    :ivar opaque: layers selected by ``ignored_scopes``; the graph keeps them as single operations.
    """

    model: Any
    scopes: ScopeIndex
    inputs: Sequence[InputSpec] = ()
    opaque: ScopeSelection = field(default_factory=lambda: ScopeSelection(frozenset()))
    _graph: Graph | None = field(default=None, repr=False)

    @property
    def style(self) -> str:
        return model_style(self.model)

    @property
    def graph(self) -> Graph:
        """The neutral graph of the model (traced on first use; ModelTraceError if it cannot be)."""
        if self._graph is None:
            from aac.tf.keras_graph import trace_graph

            self._graph = trace_graph(self.model, self.inputs, self.opaque)
        return self._graph

    @property
    def has_graph(self) -> bool:
        """True if a graph can be built (Sequential/functional always; subclassed if tracing works)."""
        try:
            self.graph  # noqa: B018 - builds and caches it
        except ModelTraceError:
            return False
        return True

    def layers(self) -> dict[str, Any]:
        """Layer path -> layer object."""
        return dict(iter_layers(self.model))

    def layer(self, path: str) -> Any:
        layers = self.layers()
        try:
            return layers[path]
        except KeyError:
            raise KeyError(f"{type(self.model).__name__} has no layer '{path}'") from None

    def path_of(self, layer: Any) -> str:
        for path, candidate in iter_layers(self.model):
            if candidate is layer:
                return path
        raise KeyError(f"layer '{getattr(layer, 'name', layer)}' is not part of {type(self.model).__name__}")

    def example_inputs(self, batch: int | None = None) -> list[np.ndarray]:
        """Sample inputs built from ``input_info`` (or the recorded input shapes), one array per input."""
        if not self.inputs:
            raise ModelTraceError(
                "this needs sample inputs, but the config has no input_info and the model recorded no input shapes; add "
                '"input_info": {"sample_size": [1, H, W, C]} to the config'
            )
        return [spec.make(batch) for spec in self.inputs]


def input_specs(model: Any, input_info: Any) -> list[InputSpec]:
    """The config's ``input_info``, else the input shapes the model recorded (float32 assumed)."""
    specs = InputSpec.from_config(input_info)
    if specs:
        return specs
    shapes = recorded_input_shapes(model)
    if not shapes:
        return []
    dtypes = [getattr(t, "dtype", "float32") for t in (getattr(model, "inputs", None) or [])] if model_style(model) != "subclassed" else []
    return [InputSpec(tuple(shape), str(dtypes[i]) if i < len(dtypes) else "float32") for i, shape in enumerate(shapes)]


def prepare_model(model: Any, config: Any = None, ignored: Sequence[str] = (),
                  where: Callable[[str], str] = lambda entry: "$", strict: bool = True) -> TFModel:
    """Build ``model`` if needed and describe it (see :class:`TFModel`); the graph is traced lazily.

    :param ignored: ``ignored_scopes`` entries; the layers they select stay opaque in the graph.
    :param where: JSON path of the config list that holds an entry (for error messages).
    :param strict: False when a section sets ``validate_scopes: false`` (unmatched entries only warn).
    """
    input_info = config.get("input_info") if config is not None else None
    specs = InputSpec.from_config(input_info)
    ensure_built(model, specs)
    specs = specs or input_specs(model, None)
    scopes = ScopeIndex.from_model(model)
    opaque = scopes.select(list(ignored), key="ignored_scopes", where=where, strict=strict) if ignored else ScopeSelection(frozenset())
    return TFModel(model=model, scopes=scopes, inputs=specs, opaque=opaque)


# ---------------------------------------------------------------------------------------------
# copying
# ---------------------------------------------------------------------------------------------

#: ``edit_config(path, layer, config) -> config``, ``edit_weights(path, layer) -> arrays | None`` and
#: ``edit_cuts(path, layer) -> {weight name: [(axis, kept indices), ...]} | None``
EditConfig = Callable[[str, Any, dict[str, Any]], dict[str, Any]]
EditWeights = Callable[[str, Any], "Sequence[Any] | None"]
EditCuts = Callable[[str, Any], "Mapping[str, Sequence[tuple[int, np.ndarray]]] | None"]


def own_variables(layer: Any) -> list[Any]:
    """The variables a layer created itself (not those of its sub-layers or transforms)."""
    seen: set[int] = set()
    result = []
    for variable in list(layer._trainable_variables) + list(layer._non_trainable_variables):
        if id(variable) not in seen:
            seen.add(id(variable))
            result.append(variable)
    return result


def copy_model(model: Any, *, edit_config: EditConfig | None = None, edit_weights: EditWeights | None = None,
               edit_cuts: EditCuts | None = None, inputs: Sequence[InputSpec] = ()) -> Any:
    """An independent copy of ``model``: same architecture, weights and aac transforms, new variables.

    Sequential and functional models are cloned layer by layer (``keras.models.clone_model``, nested
    models included); ``edit_config`` may change a layer's config on the way (for example fewer
    filters) and ``edit_weights`` supply that layer's new weights in ``layer.weights`` order (its own
    variables, transforms excluded). When ``edit_weights`` cuts channels out of a weight that carries
    transforms, ``edit_cuts`` says which (``{weight name: [(axis, kept indices), ...]}``) and the
    transforms follow the cut (:func:`~aac.tf.transforms.cut_transforms`). A subclassed model is rebuilt with ``from_config(get_config())``
    and called once on sample ``inputs`` (or the recorded input shapes); its layers cannot be edited.
    """
    paths = {id(layer): path for path, layer in iter_layers(model)}
    style = model_style(model)
    pairs: list[tuple[str, Any, Any]] = []
    if style == "subclassed":
        if edit_config is not None:
            raise ModelTraceError(
                f"{type(model).__name__} is a subclassed model: its layers cannot be rebuilt with other configs; "
                "build it with the functional API to get a physically smaller model"
            )
        clone = _copy_subclassed(model, inputs)
        pairs.append(("", model, clone))  # the model's own variables, if it created any
        for (path, layer), (_, twin) in zip(iter_layers(model), iter_layers(clone), strict=False):
            pairs.append((path, layer, twin))
    else:
        def clone_function(layer: Any) -> Any:
            path = paths.get(id(layer), layer.name)
            config = layer.get_config()
            if edit_config is not None:
                config = edit_config(path, layer, config)
            try:
                twin = layer.__class__.from_config(config)
            except Exception as exc:
                raise ModelTraceError(
                    f"cannot copy layer '{path}' ({type(layer).__name__}) from its config: {exc}. Custom layers need a "
                    "get_config() that returns their constructor arguments"
                ) from exc
            pairs.append((path, layer, twin))
            return twin

        clone = keras.models.clone_model(model, clone_function=clone_function, recursive=True)
        nested = []
        for path, layer, twin in pairs:  # sub-layers of custom composite layers: pair them by position
            if not isinstance(layer, keras.Model):
                inner = list(iter_layers(layer))
                twins = list(iter_layers(twin))
                nested += [(f"{path}{SEPARATOR}{p}", a, b) for (p, a), (_, b) in zip(inner, twins, strict=False)]
        pairs += nested
    for path, layer, twin in pairs:
        if type(layer) is not type(twin):
            raise ModelTraceError(f"copying {type(model).__name__}: layer '{path}' became a {type(twin).__name__}")
        if layer is not model and isinstance(layer, keras.Model) and model_style(layer) != "subclassed":
            continue  # a nested Sequential/functional model: its layers are paired themselves
        _copy_variables(path, layer, twin, edit_weights, edit_cuts)
    return clone


def _copy_subclassed(model: Any, inputs: Sequence[InputSpec]) -> Any:
    try:
        clone = type(model).from_config(model.get_config())
    except Exception as exc:
        raise ModelTraceError(
            f"cannot copy the subclassed model {type(model).__name__} (needed to strip it without touching the model "
            f"being trained): from_config(get_config()) failed: {exc}. Give the class a get_config() returning its "
            "constructor arguments (and accept **kwargs in __init__), or build the model with the functional API"
        ) from exc
    specs = list(inputs) or [InputSpec(tuple(s)) for s in (recorded_input_shapes(model) or [])]
    if not specs:
        raise ModelTraceError(f"cannot build a copy of {type(model).__name__}: no input shapes are known; add input_info to the config")
    samples = [s.make(1) for s in specs]
    clone(samples[0] if len(samples) == 1 else samples, training=False)
    return clone


def _copy_variables(path: str, layer: Any, twin: Any, edit_weights: EditWeights | None, edit_cuts: EditCuts | None = None) -> None:
    mine, theirs = own_variables(layer), own_variables(twin)
    values = edit_weights(path, layer) if edit_weights is not None else None
    if values is None:
        values = [v.numpy() for v in mine]
    if len(values) != len(theirs):
        raise ModelTraceError(f"copying layer '{path}': {len(values)} weights for a layer with {len(theirs)}")
    for variable, value in zip(theirs, values, strict=True):
        value = np.asarray(value)
        if tuple(variable.shape) != value.shape:
            raise ModelTraceError(f"copying layer '{path}': weight '{variable.name}' has shape {tuple(variable.shape)}, got {value.shape}")
        variable.assign(value)
    cuts = (edit_cuts(path, layer) if edit_cuts is not None else None) or {}
    for tensor_name in transformed_weights(layer):
        source = tuple(weight_variable(layer, tensor_name).shape)
        target = tuple(weight_variable(twin, tensor_name).shape)
        steps = cuts.get(tensor_name, ())
        try:
            twins = cut_transforms(transforms_of(layer, tensor_name), source if steps else target, steps)
        except TransformError as exc:
            raise ModelTraceError(f"copying layer '{path}': the transforms of its {tensor_name}: {exc}") from exc
        for transform in twins:
            add_transform(twin, tensor_name, transform)


__all__ = [
    "InputSpec",
    "ModelTraceError",
    "TFModel",
    "copy_model",
    "ensure_built",
    "input_specs",
    "iter_layers",
    "iter_transforms",
    "layer_paths",
    "model_style",
    "prepare_model",
    "recorded_input_shapes",
]
