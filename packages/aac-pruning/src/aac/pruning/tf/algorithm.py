"""``filter_pruning`` for Keras: channel masks as weight transforms and a rebuilt, smaller model on strip (:class:`TFPruningOps`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from aac.core.config import AlgorithmSection, Config
from aac.core.graph import Graph, Metatype, NormAttributes
from aac.pruning.algorithm import FilterPruningAlgorithm
from aac.pruning.groups import PruningAnalysis
from aac.pruning.tf.masks import TFChannelMasks, filter_rows, planned_part, weight_axes
from aac.pruning.tf.strip import parameter_count, remove_pruned_channels, unremovable_groups
from aac.tf.algorithm import TFFramework
from aac.tf.keras_graph import POINTWISE
from aac.tf.models import TFModel, rebuildable_layers
from aac.tf.transforms import fold_all

#: operations the analysis lets channels pass through unchanged
_PASS_THROUGH = (Metatype.ACTIVATION, Metatype.POOL, Metatype.SPATIAL_REDUCE, Metatype.FLATTEN, Metatype.ELEMENTWISE, Metatype.CONCAT)
_CHANNEL_LAYERS = (Metatype.CONV, Metatype.LINEAR, Metatype.BATCH_NORM, Metatype.GROUP_NORM)


class TFPruningOps:
    """:class:`aac.pruning.algorithm.PruningOps` for a ``keras.Model``.

    Masks are :class:`aac.tf.transforms.Mask` transforms on the user's layers, so the model object,
    ``fit``, ``tf.distribute`` and aac's checkpoints work as before. Strip rebuilds the model without
    the pruned channels - Sequential, functional or subclassed; groups whose layers cannot be rebuilt
    (:func:`aac.tf.models.rebuildable_layers`) are :meth:`unremovable`, zeroed instead.
    """

    grouped_convolutions = False
    norm_statistics = False

    def __init__(self, prepared: TFModel) -> None:
        self.framework = TFFramework(prepared)
        self._prepared = prepared
        self._layers = prepared.layers()
        self._editable = rebuildable_layers(prepared.model)
        self.graph = pruning_graph(prepared)
        #: a separable convolution's pointwise part (a layer of the analysis) -> the Keras layer that holds it
        self._parts = {
            name: planned_part(self._layers, name).path
            for name in self.graph.layers()
            if name.endswith(POINTWISE) and name not in self._layers
        }
        self._masks: TFChannelMasks | None = None

    def scope_path(self, layer: str) -> str:
        return self._parts.get(layer, layer)

    def parameter_count(self) -> int:
        return parameter_count(self._prepared.model)

    def unremovable(self, analysis: PruningAnalysis) -> dict[int, str]:
        return unremovable_groups(analysis, {name: self._editable.get(self.scope_path(name)) for name in self.graph.layers()})

    def attach_masks(self, analysis: PruningAnalysis, owner: str) -> None:
        self._masks = TFChannelMasks(owner, self._prepared, analysis)

    def layer_filters(self, layer: str) -> np.ndarray:
        return filter_rows(planned_part(self._layers, layer))

    def write_masks(self, keep: Sequence[np.ndarray]) -> None:
        self._attached().write(keep)

    def read_masks(self) -> list[np.ndarray]:
        return self._attached().read()

    def _attached(self) -> TFChannelMasks:
        if self._masks is None:
            raise RuntimeError("filter_pruning: the masks are read or written before attach_masks()")
        return self._masks

    def remove_channels(self, model: Any, analysis: PruningAnalysis, keep: Sequence[np.ndarray], owner: str) -> Any:
        """Fold the masks (zeros stay where nothing can be cut), then rebuild the model without the pruned channels."""
        fold_all(model, owner)
        if all(m.all() for m in keep):
            return model
        return remove_pruned_channels(model, analysis, keep, inputs=self._prepared.inputs)


class TFFilterPruning(FilterPruningAlgorithm):
    """Filter pruning of a ``keras.Model`` (see :class:`TFPruningOps`); groups strip cannot remove are listed
    in :attr:`unremovable` and in the statistics."""

    prepared: TFModel

    def __init__(self, prepared: TFModel, section: AlgorithmSection) -> None:
        super().__init__(TFPruningOps(prepared), section)


def pruning_graph(prepared: TFModel) -> Graph:
    """The model's graph as filter pruning must see it on Keras.

    * a batch norm can always zero a channel, also without ``scale`` and ``center``: its moving mean is masked
      then (:func:`~aac.pruning.tf.masks.weight_axes`);
    * a layer ``ignored_scopes`` selects is already opaque in aac-tf's graph (so whatever feeds it is
      kept whole, as on PyTorch); its description says why;
    * a channel layer :func:`~aac.pruning.tf.masks.weight_axes` does not know becomes opaque;
    * so does a layer with weights that the analysis would let channels pass through (``PReLU``'s
      per-channel slopes): strip rebuilds the model, and they would not fit a pruned input.
    """
    graph = prepared.graph
    layers = prepared.layers()
    nodes = []
    for node in graph:
        layer = layers.get(node.layer) if node.layer is not None else None
        if node.metatype is Metatype.UNKNOWN and node.layer is not None and node.layer in prepared.opaque:
            node = dataclasses.replace(node, op=f"{node.op} in ignored_scopes")
        elif isinstance(layer, keras.layers.BatchNormalization) and isinstance(node.attributes, NormAttributes):
            node = dataclasses.replace(node, attributes=dataclasses.replace(node.attributes, affine=True))
        elif layer is not None and (
            (node.metatype in _CHANNEL_LAYERS and weight_axes(layer) is None) or (node.metatype in _PASS_THROUGH and layer.weights)
        ):
            node = dataclasses.replace(node, metatype=Metatype.UNKNOWN, attributes=None)
        nodes.append(node)
    return Graph(nodes)


def create(prepared: TFModel, section: AlgorithmSection, config: Config) -> TFFilterPruning:
    """Factory registered for ``filter_pruning`` on the ``tf`` framework."""
    return TFFilterPruning(prepared, section)
