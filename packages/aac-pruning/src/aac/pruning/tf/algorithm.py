"""``filter_pruning`` for Keras: the neutral controller plus channel masks as weight transforms and a rebuilt, smaller model on strip."""

from __future__ import annotations

import dataclasses
import warnings
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
from aac.tf.algorithm import TFCompressionAlgorithm
from aac.tf.keras_graph import POINTWISE
from aac.tf.models import TFModel, rebuildable_layers
from aac.tf.transforms import fold_all

#: operations the analysis lets channels pass through unchanged
_PASS_THROUGH = (Metatype.ACTIVATION, Metatype.POOL, Metatype.SPATIAL_REDUCE, Metatype.FLATTEN, Metatype.ELEMENTWISE, Metatype.CONCAT)
_CHANNEL_LAYERS = (Metatype.CONV, Metatype.LINEAR, Metatype.BATCH_NORM, Metatype.GROUP_NORM)


class TFFilterPruning(FilterPruningAlgorithm, TFCompressionAlgorithm):
    """Filter pruning of a ``keras.Model``.

    Masks are :class:`aac.tf.transforms.Mask` transforms on the user's layers, so the model object,
    ``fit``, ``tf.distribute`` and aac's checkpoints work as before. ``strip()`` returns a physically
    smaller copy of the model - Sequential, functional or subclassed; groups whose layers cannot be
    rebuilt (:func:`aac.tf.models.rebuildable_layers`) are zeroed instead, with a warning, and listed
    in the statistics.
    """

    def __init__(self, prepared: TFModel, section: AlgorithmSection) -> None:
        super().__init__(prepared, section)
        self._layers = prepared.layers()
        self._editable = rebuildable_layers(prepared.model)
        graph = pruning_graph(prepared)
        parts = {
            name: planned_part(self._layers, name).path for name in graph.layers() if name.endswith(POINTWISE) and name not in self._layers
        }

        def path(name: str) -> str:
            """The Keras layer behind a layer of the analysis (a separable convolution's pointwise part is the layer)."""
            return parts.get(name, name)

        self._init_from_section(
            graph,
            section,
            is_ignored=lambda layer: path(layer) in self.section_scopes.ignored,
            is_target=lambda layer: not self.section_scopes.targets or path(layer) in self.section_scopes.targets,
            model_params=parameter_count(prepared.model),
        )
        self.unremovable = unremovable_groups(self.analysis, {name: self._editable.get(path(name)) for name in graph.layers()})

    def _attach_masks(self, analysis: PruningAnalysis) -> None:
        self._masks = TFChannelMasks(self, self.prepared, analysis)

    def _layer_filters(self, layer: str) -> np.ndarray:
        return filter_rows(planned_part(self._layers, layer))

    def _write_masks(self, keep: Sequence[np.ndarray]) -> None:
        self._masks.write(keep)

    def _read_masks(self) -> list[np.ndarray]:
        return self._masks.read()

    def _strip(self, model: Any) -> Any:
        """Fold the masks (zeros stay where nothing can be cut), then rebuild the model without the pruned channels."""
        fold_all(model, self.name)
        masks = self._read_masks()
        zeroed = [g for g in self.unremovable if not masks[g].all()]
        if zeroed:
            layers = sorted({p for g in zeroed for p in self.analysis.groups[g].producers})
            warnings.warn(
                f"filter_pruning: strip() zeroes the pruned filters of {', '.join(layers[:4])}{' …' if len(layers) > 4 else ''} "
                f"but cannot remove them: {self.unremovable[zeroed[0]]}. The stripped model computes the same, "
                "at the original size",
                UserWarning,
                stacklevel=4,
            )
        keep = self._removal_masks()
        if all(m.all() for m in keep):
            return model
        return remove_pruned_channels(model, self.analysis, keep, inputs=self.prepared.inputs)


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
