"""``TFCompressionAlgorithm``: what every TensorFlow algorithm shares - scopes, transforms, stripping and export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aac.core.api import CompressionAlgorithm
from aac.core.config import AlgorithmSection
from aac.core.scopes import SectionScopes
from aac.tf.export import export_model
from aac.tf.models import TFModel, copy_model, iter_layers
from aac.tf.transforms import TransformError, WeightTransform, add_transform, fold_all, transformed_weights, transforms_of


class TFCompressionAlgorithm(CompressionAlgorithm):
    """Base class of TensorFlow algorithms (pruning, sparsity, quantization).

    A subclass receives the prepared model and its config section, attaches weight transforms to the
    user's layers with :meth:`add_transform` (:mod:`aac.tf.transforms`) and may override
    :meth:`_strip` to turn them into plain layers. It gets for free:

    * :attr:`section_scopes` (``ignored`` and ``targets``) and :meth:`is_selected` - the section's scopes, resolved
      against the model's layer paths (entries matching nothing are config errors);
    * :attr:`prepared` with the layers (:meth:`~aac.tf.models.TFModel.layers`), the input specs and the
      neutral graph (:attr:`~aac.tf.models.TFModel.graph`, traced on first use);
    * :meth:`strip_model` that never touches the model being trained: asked to strip the live
      model it strips a copy (:func:`~aac.tf.models.copy_model`; the composite controller chains
      children through the same copy);
    * export to ``.keras``, a SavedModel directory and ``.weights.h5`` (:func:`~aac.tf.export.export_model`).
    """

    def __init__(self, prepared: TFModel, section: AlgorithmSection) -> None:
        super().__init__(prepared.model, section.raw, input_size=[list(s.shape) for s in prepared.inputs] or None)
        self.prepared = prepared
        self.section = section
        self.section_scopes = SectionScopes.resolve(prepared.scopes, section)

    def initialize(self, data_loader: Any, *, batch_size: int = 32) -> None:
        """Batch-norm adaptation over ``data_loader`` when the section's ``initializer.batchnorm_adaptation`` asks for it."""
        from aac.tf.batchnorm import adapt_batchnorm, input_batches

        self.remember_adaptation_data(data_loader, self.section.batchnorm_adaptation_samples, batch_size=batch_size)
        samples = self.section.batchnorm_adaptation_samples
        if samples > 0 and data_loader is not None:
            adapt_batchnorm(self.model, list(input_batches(data_loader, batch_size, samples)), samples)

    def _adapt_batchnorm(self, data_loader: Any, samples: int, *, batch_size: int) -> bool:
        from aac.tf.batchnorm import adapt_batchnorm, input_batches

        return adapt_batchnorm(self.model, list(input_batches(data_loader, batch_size, samples)), samples)

    def is_selected(self, layer_path: str) -> bool:
        """True if the config lets this algorithm compress ``layer_path`` (targeted and not ignored)."""
        return self.section_scopes.selects(layer_path)

    def selected_layers(self, *types: type) -> Iterator[tuple[str, Any]]:
        """``(path, layer)`` of the model's layers this algorithm may compress, optionally of the given classes."""
        for path, layer in iter_layers(self.model):
            if self.is_selected(path) and (not types or isinstance(layer, types)):
                yield path, layer

    # -- transforms -------------------------------------------------------------------------
    def add_transform(self, layer: Any, tensor_name: str, transform: WeightTransform) -> WeightTransform:
        """Attach ``transform`` (owned by this algorithm) to ``layer.<tensor_name>``."""
        if transform.owner != self.name:
            raise TransformError(f"algorithm '{self.name}' cannot add a transform owned by '{transform.owner}'")
        return add_transform(layer, tensor_name, transform)

    def own_transforms(self, model: Any = None) -> Iterator[tuple[str, Any, str, WeightTransform]]:
        """``(layer path, layer, weight name, transform)`` for every transform of this algorithm in ``model``."""
        for path, layer in iter_layers(model if model is not None else self.model):
            for tensor_name in transformed_weights(layer):
                for transform in transforms_of(layer, tensor_name):
                    if transform.owner == self.name:
                        yield path, layer, tensor_name, transform

    # -- stripping and export --------------------------------------------------------------
    def strip_model(self, model: Any) -> Any:
        """Fold this algorithm's transforms into plain weights; the live training model is copied first."""
        if model is self.model:
            model = copy_model(model, inputs=self.prepared.inputs)
        return self._strip(model)

    def _strip(self, model: Any) -> Any:
        """Hook: turn this algorithm's transforms in ``model`` (a copy) into plain layers. Default: fold them.

        An algorithm that makes the model physically smaller (filter pruning) folds, then builds the
        smaller model with :func:`~aac.tf.models.copy_model` and its ``edit_config`` / ``edit_weights``.
        """
        fold_all(model, self.name)
        return model

    def _export(self, stripped_model: Any, path: Path, **kwargs: Any) -> None:
        """Write ``stripped_model`` to ``path`` (``.keras``, ``.weights.h5`` or a SavedModel directory)."""
        export_model(stripped_model, path, inputs=self.prepared.inputs, **kwargs)
