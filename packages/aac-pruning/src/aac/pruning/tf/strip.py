"""Physical removal on Keras: rebuild the model with fewer filters, smaller kernels and norm layers.

Keras layers cannot shrink in place, so the stripped model is a new one: the (already copied,
masks folded) model is cloned layer by layer with :func:`aac.tf.models.copy_model`, whose
``edit_config`` gives every producer fewer ``filters`` / ``units`` and whose ``edit_weights`` hands
each changed layer its cut weights (kernels along their output and input channel axes, biases, norm
scales, offsets and moving statistics). Keras infers every other size from the new inputs. That
works for Sequential and functional models (nested ones included); layers of a subclassed model or
inside a custom layer are created by the user's ``__init__`` and cannot be rebuilt smaller, so their
groups are only zeroed (:func:`editable_layers` tells them apart and the statistics list them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from aac.pruning.groups import PruningAnalysis
from aac.pruning.masks import channel_indices
from aac.pruning.tf.masks import weight_axes
from aac.tf.models import copy_model, iter_layers, model_style, own_variables
from aac.tf.transforms import original

#: separator of Keras layer paths (``"block/inner"``), see aac-tf's README
_SEPARATOR = "/"


def editable_layers(model: Any) -> dict[str, str | None]:
    """Layer path -> None if :func:`copy_model` can rebuild the layer with another config, else why not.

    Layers of Sequential/functional models (nested ones too) are cloned from their configs; layers
    of a subclassed model, or inside a custom layer, are created by Python code aac cannot change.
    """
    layers = dict(iter_layers(model))
    if model_style(model) == "subclassed":
        why = f"{type(model).__name__} is a subclassed model: its layers cannot be rebuilt smaller (build it with the functional API)"
        return dict.fromkeys(layers, why)
    result: dict[str, str | None] = {}
    for path in layers:
        parts = path.split(_SEPARATOR)
        result[path] = None
        for depth in range(1, len(parts)):
            parent = layers.get(_SEPARATOR.join(parts[:depth]))
            if not isinstance(parent, keras.Model) or model_style(parent) == "subclassed":
                kind = "custom layer" if not isinstance(parent, keras.Model) else "subclassed model"
                result[path] = (f"'{path}' is inside {kind} '{_SEPARATOR.join(parts[:depth])}' "
                                f"({type(parent).__name__}), which cannot be rebuilt smaller")
                break
    return result


def parameter_count(model: Any) -> int:
    """The model's parameters counted as PyTorch counts them: every layer weight, trainable or not, except
    batch-norm moving statistics (buffers in PyTorch); aac transforms' variables and seed states excluded."""
    total = 0
    for layer in [model, *(layer for _, layer in iter_layers(model))]:
        statistics = {id(getattr(layer, n, None)) for n in ("moving_mean", "moving_variance")} if isinstance(
            layer, keras.layers.BatchNormalization) else set()
        total += sum(int(np.prod(v.shape)) for v in own_variables(layer) if id(v) not in statistics)
    return total


def _expanded(indices: np.ndarray, repeat: int) -> np.ndarray:
    """Indices of input channels -> indices of their ``repeat`` consecutive entries."""
    if repeat == 1:
        return indices
    return (indices[:, None] * repeat + np.arange(repeat)).ravel()


def remove_pruned_channels(model: Any, analysis: PruningAnalysis, keep: Sequence[np.ndarray], inputs: Sequence[Any] = ()) -> Any:
    """A copy of ``model`` (Sequential or functional, this algorithm's masks already folded) with every
    planned layer cut to the channels ``keep`` retains. Other algorithms' transforms on the cut weights
    (a per-channel quantizer, a sparsity mask) follow the cut (:meth:`aac.tf.WeightTransform.select_channels`)."""
    cuts: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = {
        plan.layer: (channel_indices(plan.outputs, keep), channel_indices(plan.inputs, keep)) for plan in analysis.layers.values()
    }

    def edit_config(path: str, layer: Any, config: dict[str, Any]) -> dict[str, Any]:
        outputs = cuts.get(path, (None, None))[0]
        if outputs is not None:
            for key in ("filters", "units"):
                if key in config:
                    config = {**config, key: len(outputs)}
            if isinstance(layer, keras.layers.GroupNormalization):  # one channel per group (the only kind pruned)
                config = {**config, "groups": len(outputs)}
        if isinstance(layer, keras.layers.Reshape) and len(config.get("target_shape", ())) == 1:
            config = {**config, "target_shape": (-1,)}  # a flatten to an explicit size: the size changes
        return config

    def edit_cuts(path: str, layer: Any) -> dict[str, list[tuple[int, np.ndarray]]] | None:
        """Weight name -> ``(axis, kept indices)`` cuts, output axis first (what the weights and their transforms follow)."""
        if path not in cuts:
            return None
        outputs, inputs_ = cuts[path]
        result: dict[str, list[tuple[int, np.ndarray]]] = {}
        for name, a in (weight_axes(layer) or {}).items():
            steps = []
            if a.output is not None and outputs is not None:
                steps.append((a.output, outputs))
            if a.input is not None and inputs_ is not None:
                steps.append((a.input, _expanded(inputs_, a.input_repeat)))
            if steps:
                result[name] = steps
        return result

    def edit_weights(path: str, layer: Any) -> list[np.ndarray] | None:
        steps = edit_cuts(path, layer)
        if steps is None:
            return None
        names = {id(original(layer, name)): name for name in weight_axes(layer) or {}}
        values = []
        for variable in own_variables(layer):
            value = np.asarray(variable.numpy())
            for axis, index in steps.get(names.get(id(variable), ""), ()):
                value = np.take(value, index, axis=axis)
            values.append(value)
        return values

    return copy_model(model, edit_config=edit_config, edit_weights=edit_weights, edit_cuts=edit_cuts, inputs=inputs)


def unremovable_groups(analysis: PruningAnalysis, editable: Mapping[str, str | None]) -> dict[int, str]:
    """Group id -> why its filters cannot be removed, for groups that touch a layer :func:`editable_layers` refuses."""
    blocked: dict[int, str] = {}
    for plan in analysis.layers.values():
        reason = editable.get(plan.layer)
        if reason is None:
            continue
        for layout in (plan.outputs, plan.inputs):
            for group in (layout.groups if layout is not None else ()):
                blocked.setdefault(group, reason)
    return blocked
