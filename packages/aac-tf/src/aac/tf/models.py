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

Walking the layers and reading ``input_info`` is :mod:`aac.tf.layers`' (the leaf that the scope and
graph modules share); its names are re-exported here, where algorithm code has always found them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from aac.core.graph import Graph
from aac.tf.keras_graph import trace_graph
from aac.tf.keras_internals import constructor_arguments, own_variables
from aac.tf.layers import SEPARATOR, InputSpec, ModelTraceError, iter_layers, layer_paths, model_style, recorded_input_shapes, sublayers
from aac.tf.scopes import ScopeIndex, ScopeSelection
from aac.tf.transforms import (
    TransformError,
    add_transform,
    cut_transforms,
    iter_transforms,
    transformed_weights,
    transforms_of,
    weight_variable,
)


def parameter_count(model: Any) -> int:
    """The model's parameters counted as PyTorch counts them: every layer weight, trainable or not, except
    batch-norm moving statistics (buffers in PyTorch); aac transforms' variables and seed states excluded."""
    total = 0
    for layer in [model, *(layer for _, layer in iter_layers(model))]:
        statistics = (
            {id(getattr(layer, n, None)) for n in ("moving_mean", "moving_variance")}
            if isinstance(layer, keras.layers.BatchNormalization)
            else set()
        )
        total += sum(int(np.prod(v.shape)) for v in own_variables(layer) if id(v) not in statistics)
    return total


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


def prepare_model(
    model: Any, config: Any = None, ignored: Sequence[str] = (), where: Callable[[str], str] = lambda entry: "$", strict: bool = True
) -> TFModel:
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

#: attribute of a copied layer pointing (weakly) at the user's layer it descends from
_ORIGIN = "_aac_origin"
#: attribute of a fresh instance (subclassed model, custom layer) listing the layers in it that the copy resized
_RESIZED = "_aac_resized"


def origin(layer: Any) -> Any:
    """The user's layer that ``layer`` is a copy of (through any number of copies); ``layer`` itself if it is no copy.

    Strip steps that look up what an algorithm attached to the user's layers use it: layer names are
    not an identity (Keras numbers auto-named layers per process), the layer object is.
    """
    reference = layer.__dict__.get(_ORIGIN)
    source = reference() if reference is not None else None
    return source if source is not None else layer


def _is_graph_model(layer: Any) -> bool:
    """A Sequential or functional model: its layers are rebuilt from their configs."""
    return isinstance(layer, keras.Model) and model_style(layer) != "subclassed"


def _built_by_code(layer: Any) -> bool:
    """A subclassed model or a custom layer holding layers: Python code creates its sub-layers, not a config."""
    if isinstance(layer, keras.Model):
        return not _is_graph_model(layer)
    return bool(sublayers(layer)) and not type(layer).__module__.startswith("keras.")


def fresh_instance(layer: Any, path: str = "") -> Any:
    """A new, unbuilt instance of ``layer``'s class, made the way the user made it.

    ``from_config(get_config())`` first (a class's own ``get_config``, or Keras' automatic one for
    constructors that accept ``**kwargs``); else the constructor called again with the arguments Keras
    recorded (:func:`~aac.tf.keras_internals.constructor_arguments`), which covers a plain subclassed
    model without ``get_config``. The instance gets ``layer``'s name.
    """
    cls = type(layer)
    try:
        twin = cls.from_config(layer.get_config())
    except Exception as from_config_error:
        arguments = constructor_arguments(layer)
        if arguments is None:
            raise ModelTraceError(
                f"cannot make a copy of {_describe(layer, path)}: from_config(get_config()) failed ({_first_line(from_config_error)}) "
                "and Keras did not record its constructor arguments (it records them only when they are plain values: str, "
                "int, float, bool, None and lists/dicts of them). Give the class a get_config() returning its constructor "
                "arguments, or build the model with the functional API"
            ) from from_config_error
        try:
            twin = cls(**arguments)
        except Exception as exc:
            raise ModelTraceError(
                f"cannot make a copy of {_describe(layer, path)}: calling {cls.__name__}(**{arguments}) again failed: "
                f"{_first_line(exc)}. Give the class a get_config() returning its constructor arguments"
            ) from exc
    twin.name = layer.name
    return twin


def _describe(layer: Any, path: str) -> str:
    return f"'{path}' ({type(layer).__name__})" if path else f"the model {type(layer).__name__}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _paired_layers(layer: Any, twin: Any, path: str, *, strict: bool) -> list[tuple[str, Any, Any]]:
    """``(path, layer's sub-layer, twin's sub-layer)`` for the sub-layer trees of two instances made by the same code.

    Children pair by position and class (Keras tracks them in the order they are created). With
    ``strict=False`` only the common prefix pairs: an unbuilt twin lacks the layers its ``build``
    creates, which come last; ``strict=True`` makes any difference an error.
    """
    pairs: list[tuple[str, Any, Any]] = []
    seen: set[int] = set()
    stack = [(path, layer, twin)]
    while stack:
        prefix, a, b = stack.pop()
        mine, theirs = sublayers(a), sublayers(b)
        common = next(
            (i for i, (x, y) in enumerate(zip(mine, theirs, strict=False)) if type(x) is not type(y)), min(len(mine), len(theirs))
        )
        if strict and not (common == len(mine) == len(theirs)):
            raise ModelTraceError(
                f"copying {_describe(a, prefix)}: the copy holds other layers ({[type(y).__name__ for y in theirs]}) than the "
                f"original ({[type(x).__name__ for x in mine]}); its layers must not depend on anything but its constructor arguments"
            )
        children = []
        for x, y in zip(mine[:common], theirs[:common], strict=True):
            if id(x) in seen:
                continue
            seen.add(id(x))
            child = f"{prefix}{SEPARATOR}{x.name}" if prefix else x.name
            pairs.append((child, x, y))
            children.append((child, x, y))
        stack.extend(reversed(children))
    return pairs


def _config_of(layer: Any) -> dict[str, Any] | None:
    try:
        return dict(layer.get_config())
    except Exception:  # a custom layer without a serialisable config: nothing to edit in it
        return None


def _reconfigure(twin: Any, path: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Give the unbuilt ``twin`` the config entries ``after`` changes (its ``build`` then creates weights of the new
    sizes); False if nothing changes."""
    changed = {key: value for key, value in after.items() if before.get(key) != value}
    if not changed:
        return False
    if own_variables(twin):
        raise ModelTraceError(
            f"cannot rebuild layer '{path}' ({type(twin).__name__}) with {changed}: the constructor of the model or layer "
            "holding it builds it, so its weights exist before aac could change them"
        )
    for key, value in changed.items():
        if not hasattr(twin, key):
            raise ModelTraceError(
                f"cannot rebuild layer '{path}' ({type(twin).__name__}) with {key}={value!r}: it has no attribute '{key}'"
            )
        setattr(twin, key, value)
    config = twin.get_config()
    wrong = {key: config.get(key) for key, value in changed.items() if config.get(key) != value}
    if wrong:
        raise ModelTraceError(f"cannot rebuild layer '{path}' ({type(twin).__name__}) with {changed}: its config still says {wrong}")
    return True


def _prepare_twin(layer: Any, twin: Any, path: str, edit_config: EditConfig | None) -> None:
    """Before ``twin`` (a fresh instance of a code-built ``layer``) is built: give its sub-layers the original names
    (so the copy has the same layer paths and variable paths) and the configs ``edit_config`` asks for."""
    resized = []
    for sub_path, source, target in _paired_layers(layer, twin, path, strict=False):
        target.name = source.name
        before = _config_of(source) if edit_config is not None and not _is_graph_model(source) else None
        if before is not None and _reconfigure(target, sub_path, before, edit_config(sub_path, source, dict(before))):  # type: ignore[misc]
            resized.append(sub_path)
    if resized:
        object.__setattr__(twin, _RESIZED, resized)


def resized_by_code(model: Any) -> list[str]:
    """Paths of layers that :func:`copy_model` resized inside a subclassed model or custom layer.

    Their owner's config (what a ``.keras`` file stores) still builds them at the original size, so such
    a model does not load back from a ``.keras`` file; a SavedModel keeps them as they are.
    """
    return [p for owner in (model, *(layer for _, layer in iter_layers(model))) for p in owner.__dict__.get(_RESIZED, ())]


def rebuildable_layers(model: Any) -> dict[str, str | None]:
    """Layer path -> None if :func:`copy_model` can give the layer another config (``edit_config``), else why not.

    Layers of a Sequential or functional graph (nested ones too) are rebuilt from their configs.
    Layers that Python code creates - those of a subclassed model or inside a custom layer - are
    rebuilt by a fresh instance of their owner (:func:`fresh_instance`) changed before it is built;
    that works where the owner can be instantiated again and its constructor creates the layer
    without building its weights.
    """
    result: dict[str, str | None] = {}

    def in_graph(owner: Any, prefix: str) -> None:
        for layer in sublayers(owner):
            path = f"{prefix}{layer.name}"
            result[path] = None
            if _is_graph_model(layer):
                in_graph(layer, f"{path}{SEPARATOR}")
            elif _built_by_code(layer):
                by_code(layer, path)
            else:
                why = f"'{{}}' is inside the Keras layer '{path}' ({type(layer).__name__}), which aac rebuilds whole"
                result.update({inner: why.format(inner) for inner, _ in _subtree(layer, path)})

    def by_code(owner: Any, path: str) -> None:
        try:
            twin = fresh_instance(owner, path)
        except ModelTraceError as exc:
            result.update(dict.fromkeys((p for p, _ in _subtree(owner, path)), str(exc)))
            return
        paired = {p: b for p, _, b in _paired_layers(owner, twin, path, strict=False)}
        kind = "subclassed model" if isinstance(owner, keras.Model) else "custom layer"
        where = f"{kind} {type(owner).__name__}" + (f" ('{path}')" if path else "")
        for inner, _ in _subtree(owner, path):
            counterpart = paired.get(inner)
            if counterpart is None:
                result[inner] = (
                    f"'{inner}' is created when the {where} is built or called, not by its constructor, so aac cannot rebuild it smaller"
                )
            elif own_variables(counterpart):
                result[inner] = f"'{inner}' is built by the constructor of the {where}, so aac cannot rebuild it smaller"
            else:
                result[inner] = None

    if _is_graph_model(model):
        in_graph(model, "")
    else:
        by_code(model, "")
    return result


def _subtree(layer: Any, path: str) -> list[tuple[str, Any]]:
    prefix = f"{path}{SEPARATOR}" if path else ""
    return [(f"{prefix}{p}", inner) for p, inner in iter_layers(layer)]


def copy_model(
    model: Any,
    *,
    edit_config: EditConfig | None = None,
    edit_weights: EditWeights | None = None,
    edit_cuts: EditCuts | None = None,
    inputs: Sequence[InputSpec] = (),
) -> Any:
    """An independent copy of ``model``: same architecture, layer names, weights and aac transforms; new variables.

    Sequential and functional models are cloned layer by layer (``keras.models.clone_model``, nested
    models included; ``keras.ops`` calls and operators such as ``x + 3.0`` are cloned as operations).
    A subclassed model, and a custom layer holding layers, is a fresh instance of its class
    (:func:`fresh_instance`: no ``get_config`` needed when Keras recorded the constructor arguments)
    whose layers get the original names before it is called once on sample ``inputs`` (or the
    recorded input shapes). Each copied layer remembers the layer it copies (:func:`origin`).

    ``edit_config`` may change a layer's config on the way (for example fewer filters) wherever
    :func:`rebuildable_layers` allows it, and ``edit_weights`` supply that layer's new weights in
    ``layer.weights`` order (its own variables, transforms excluded). When ``edit_weights`` cuts
    channels out of a weight that carries transforms, ``edit_cuts`` says which (``{weight name:
    [(axis, kept indices), ...]}``) and the transforms follow the cut (:func:`~aac.tf.transforms.cut_transforms`).
    """
    if model_style(model) == "subclassed":
        clone = fresh_instance(model)
        _prepare_twin(model, clone, "", edit_config)
        _build(model, clone, inputs)
        pairs = [("", model, clone), *_paired_layers(model, clone, "", strict=True)]
    else:
        pairs = []
        paths = {id(layer): path for path, layer in iter_layers(model)}

        def clone_function(layer: Any) -> Any:
            if not isinstance(layer, keras.layers.Layer):  # a keras.ops call or an operator (x + 3.0): no weights, nothing to edit
                return layer.__class__.from_config(layer.get_config())
            path = paths.get(id(layer), layer.name)
            if _built_by_code(layer):
                twin = fresh_instance(layer, path)
                _prepare_twin(layer, twin, path, edit_config)
            else:
                config = layer.get_config()
                if edit_config is not None:
                    config = edit_config(path, layer, config)
                try:
                    twin = layer.__class__.from_config(config)
                except Exception as exc:
                    raise ModelTraceError(f"cannot copy layer '{path}' ({type(layer).__name__}) from its config: {exc}") from exc
            pairs.append((path, layer, twin))
            return twin

        clone = keras.models.clone_model(model, clone_function=clone_function, recursive=True)
        pairs += [
            inner
            for path, layer, twin in list(pairs)
            if sublayers(layer) and not _is_graph_model(layer)  # composite layers
            for inner in _paired_layers(layer, twin, path, strict=True)
        ]
    for path, layer, twin in pairs:
        if type(layer) is not type(twin):
            raise ModelTraceError(f"copying {type(model).__name__}: layer '{path}' became a {type(twin).__name__}")
        object.__setattr__(twin, _ORIGIN, weakref.ref(origin(layer)))
        if layer is not model and _is_graph_model(layer):
            continue  # a nested Sequential/functional model: its layers are paired themselves
        _copy_variables(path, layer, twin, edit_weights, edit_cuts)
    return clone


def _build(model: Any, clone: Any, inputs: Sequence[InputSpec]) -> None:
    """Build the fresh instance ``clone`` by calling it once on sample inputs."""
    specs = list(inputs) or [InputSpec(tuple(s)) for s in (recorded_input_shapes(model) or [])]
    if not specs:
        raise ModelTraceError(f"cannot build a copy of {type(model).__name__}: no input shapes are known; add input_info to the config")
    samples = [s.make(1) for s in specs]
    try:
        clone(samples[0] if len(samples) == 1 else samples, training=False)
    except Exception as exc:
        raise ModelTraceError(f"building the copy of {type(model).__name__} failed: {_first_line(exc)}") from exc


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
    "fresh_instance",
    "input_specs",
    "iter_layers",
    "iter_transforms",
    "layer_paths",
    "model_style",
    "origin",
    "own_variables",
    "parameter_count",
    "prepare_model",
    "rebuildable_layers",
    "recorded_input_shapes",
    "resized_by_code",
]
