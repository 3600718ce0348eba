"""The TensorFlow side of aac-core's algorithm contract: :class:`TFFramework` and :class:`TFCompressionAlgorithm`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from aac.core.config import AlgorithmSection
from aac.core.framework import FrameworkAlgorithm
from aac.tf.batchnorm import adapt_batchnorm, input_batches
from aac.tf.export import export_model
from aac.tf.models import TFModel, copy_model, iter_layers
from aac.tf.transforms import TransformError, WeightTransform, add_transform, fold_all, iter_transforms

__all__ = ["DEFAULT_BATCH_SIZE", "TFCompressionAlgorithm", "TFFramework"]

#: the batch size arrays given to ``initialize`` are cut into when it is not given
DEFAULT_BATCH_SIZE = 32


class TFFramework:
    """:class:`aac.core.framework.Framework` for a ``keras.Model``.

    Copies are :func:`~aac.tf.models.copy_model` (same layer names and weight transforms, new
    variables); folding bakes an owner's weight transforms (:mod:`aac.tf.transforms`) into the weights;
    export writes ``.keras``, a SavedModel directory or ``.weights.h5`` (:func:`~aac.tf.export.export_model`);
    arrays are cut into ``batch_size`` batches.
    """

    def __init__(self, prepared: TFModel) -> None:
        self.prepared = prepared

    @property
    def model(self) -> Any:
        return self.prepared.model

    def copy(self, model: Any) -> Any:
        return copy_model(model, inputs=self.prepared.inputs)

    def has_transforms(self, model: Any, owner: str) -> bool:
        return any(t.owner == owner for _, _, chain in iter_transforms(model) for t in chain)

    def fold(self, model: Any, owner: str) -> Any:
        fold_all(model, owner)
        return model

    def export(self, model: Any, path: Path, **kwargs: Any) -> None:
        export_model(model, path, inputs=self.prepared.inputs, **kwargs)

    def batch_reading(self, *, input_fn: Any = None, batch_size: int | None = None) -> dict[str, Any]:
        if input_fn is not None:
            raise TypeError("initialize(): input_fn= is for torch models; a Keras model's batches are its inputs (or (x, y) tuples)")
        return {"batch_size": DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)}

    def adapt_batchnorm(self, model: Any, data_loader: Any, samples: int, reading: Mapping[str, Any], *, quiet: bool) -> bool:
        return adapt_batchnorm(model, list(input_batches(data_loader, reading["batch_size"], samples)), samples)


class TFCompressionAlgorithm(FrameworkAlgorithm):
    """Base class of a TensorFlow algorithm that needs nothing beyond the shared flow.

    A subclass receives the prepared model and its config section, attaches weight transforms to the
    user's layers with :meth:`add_transform` (:mod:`aac.tf.transforms`) and may override ``_strip`` to do
    more than fold them. It gets everything of :class:`aac.core.framework.FrameworkAlgorithm` over
    :class:`TFFramework` - :attr:`section_scopes` and :meth:`is_selected`, ``initialize`` (batch-norm
    adaptation), ``strip_model`` on a copy of the live model, export to ``.keras``, a SavedModel directory
    and ``.weights.h5`` - plus :attr:`prepared` with the layers (:meth:`~aac.tf.models.TFModel.layers`), the
    input specs and the neutral graph (:attr:`~aac.tf.models.TFModel.graph`, traced on first use).
    """

    prepared: TFModel

    def __init__(self, prepared: TFModel, section: AlgorithmSection) -> None:
        super().__init__(TFFramework(prepared), section)

    def selected_layers(self, *types: type) -> Iterator[tuple[str, Any]]:
        """``(path, layer)`` of the model's layers this algorithm may compress, optionally of the given classes."""
        for path, layer in iter_layers(self.model):
            if self.is_selected(path) and (not types or isinstance(layer, types)):
                yield path, layer

    def add_transform(self, layer: Any, tensor_name: str, transform: WeightTransform) -> WeightTransform:
        """Attach ``transform`` (owned by this algorithm) to ``layer.<tensor_name>``."""
        if transform.owner != self.name:
            raise TransformError(f"algorithm '{self.name}' cannot add a transform owned by '{transform.owner}'")
        return add_transform(layer, tensor_name, transform)
