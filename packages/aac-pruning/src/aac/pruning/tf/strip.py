"""Physical removal on Keras: rebuild the model with fewer filters, smaller kernels and norm layers.

Keras layers cannot shrink in place, so the stripped model is a new one: the (already copied,
masks folded) model is copied with :func:`aac.tf.models.copy_model`, whose ``edit_config`` gives
every producer fewer ``filters`` / ``units`` and whose ``edit_weights`` hands each changed layer its
cut weights (kernels along their output and input channel axes, biases, norm scales, offsets and
moving statistics). Keras infers every other size from the new inputs. Layers of Sequential and
functional models are rebuilt from their configs; those of a subclassed model or inside a custom
layer are changed in a fresh instance of their owner before it is built. Where that cannot be done
(:func:`aac.tf.models.rebuildable_layers` says why), the groups are only zeroed and the statistics
list them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from aac.pruning.groups import PruningAnalysis
from aac.pruning.masks import channel_indices
from aac.pruning.tf.masks import WeightAxes, planned_part
from aac.tf.models import copy_model, iter_layers, own_variables, parameter_count
from aac.tf.transforms import original

__all__ = ["parameter_count", "remove_pruned_channels", "unremovable_groups"]

#: the weights whose output channels are a layer's ``filters`` / ``units``
_FILTER_WEIGHTS = {"kernel", "pointwise_kernel"}


def remove_pruned_channels(model: Any, analysis: PruningAnalysis, keep: Sequence[np.ndarray], inputs: Sequence[Any] = ()) -> Any:
    """A copy of ``model`` (this algorithm's masks already folded) with every planned layer cut to the channels
    ``keep`` retains. Other algorithms' transforms on the cut weights (a per-channel quantizer, a sparsity mask)
    follow the cut (:meth:`aac.tf.WeightTransform.select_channels`)."""
    layers = dict(iter_layers(model))
    #: layer path -> (weights, kept output entries, kept input entries) of each planned part of the layer
    parts: dict[str, list[tuple[dict[str, WeightAxes], np.ndarray | None, np.ndarray | None]]] = {}
    for plan in analysis.layers.values():
        part = planned_part(layers, plan.layer)
        parts.setdefault(part.path, []).append((part.axes, channel_indices(plan.outputs, keep), channel_indices(plan.inputs, keep)))

    def edit_config(path: str, layer: Any, config: dict[str, Any]) -> dict[str, Any]:
        for axes, outputs, _ in parts.get(path, ()):
            if outputs is None:
                continue
            if _FILTER_WEIGHTS & set(axes):
                for key in ("filters", "units"):
                    if key in config:
                        config = {**config, key: len(outputs)}
            if isinstance(layer, keras.layers.GroupNormalization):  # one channel per group (the only kind pruned)
                config = {**config, "groups": len(outputs)}
        target = tuple(config.get("target_shape", ())) if isinstance(layer, keras.layers.Reshape) else ()
        if target and all(extent == 1 for extent in target[:-1]):  # a flatten to (N,), or (1, ..., 1, C) of a squeeze-excitation
            config = {**config, "target_shape": (*target[:-1], -1)}  # the size follows the pruned channels
        return config

    def edit_cuts(path: str, layer: Any) -> dict[str, list[tuple[int, np.ndarray]]] | None:
        """Weight name -> ``(axis, kept indices)`` cuts, output axis first (what the weights and their transforms follow)."""
        if path not in parts:
            return None
        result: dict[str, list[tuple[int, np.ndarray]]] = {}
        for axes, outputs, inputs_ in parts[path]:
            for name, a in axes.items():
                steps = []
                if a.output is not None and outputs is not None:
                    steps.append((a.output, outputs))
                if a.input is not None and inputs_ is not None:
                    steps.append((a.input, inputs_))
                if steps:
                    result[name] = steps
        return result

    def edit_weights(path: str, layer: Any) -> list[np.ndarray] | None:
        steps = edit_cuts(path, layer)
        if steps is None:
            return None
        names = {id(original(layer, name)): name for name in steps}
        values = []
        for variable in own_variables(layer):
            value = np.asarray(variable.numpy())
            for axis, index in steps.get(names.get(id(variable), ""), ()):
                value = np.take(value, index, axis=axis)
            values.append(value)
        return values

    return copy_model(model, edit_config=edit_config, edit_weights=edit_weights, edit_cuts=edit_cuts, inputs=inputs)


def unremovable_groups(analysis: PruningAnalysis, editable: Mapping[str, str | None]) -> dict[int, str]:
    """Group id -> why its filters cannot be removed, for groups that touch a layer ``editable`` refuses
    (:func:`aac.tf.models.rebuildable_layers`)."""
    blocked: dict[int, str] = {}
    for plan in analysis.layers.values():
        reason = editable.get(plan.layer)
        if reason is None:
            continue
        for layout in (plan.outputs, plan.inputs):
            for group in layout.groups if layout is not None else ():
                blocked.setdefault(group, reason)
    return blocked
