"""``TorchCompressionAlgorithm``: what every torch algorithm shares - scopes, stripping and export."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from aac.core.api import CompressionAlgorithm
from aac.core.config import AlgorithmSection
from aac.core.errors import AacError
from aac.core.scopes import SectionScopes
from aac.torch.batchnorm import InputFn, adapt_batchnorm, default_inputs
from aac.torch.export import export_module
from aac.torch.tracing import TorchModel
from aac.torch.transforms import fold_all, has_transforms
from torch import nn


class TorchCompressionAlgorithm(CompressionAlgorithm):
    """Base class of torch algorithms (pruning, sparsity, quantization).

    A subclass receives the prepared model and its config section, registers weight transforms on
    the user's modules (:mod:`aac.torch.transforms`) and implements :meth:`_strip` to turn them into
    plain layers. It gets for free:

    * :attr:`section_scopes` (``ignored`` and ``targets``) and :meth:`is_selected` - the section's scopes, resolved
      (entries matching nothing are config errors);
    * :meth:`strip_model` that never touches the model being trained: asked to strip the live
      model it strips a deep copy (the composite controller chains children through the same copy);
    * export to ``.onnx`` (``torch.onnx.export``) and ``.pt`` (``torch.save`` of the stripped module).
    """

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(prepared.module, section.raw, input_size=[list(s.shape) for s in prepared.inputs] or None)
        self.prepared = prepared
        self.section = section
        self.section_scopes = SectionScopes.resolve(prepared.scopes, section)

    def is_selected(self, module_path: str) -> bool:
        """True if the config lets this algorithm compress ``module_path`` (targeted and not ignored)."""
        return self.section_scopes.selects(module_path)

    def initialize(self, data_loader: Any, *, input_fn: InputFn | None = None) -> None:
        """Batch-norm adaptation over ``data_loader`` when the section's ``initializer.batchnorm_adaptation`` asks for it."""
        self.remember_adaptation_data(data_loader, self.section.batchnorm_adaptation_samples, input_fn=input_fn or default_inputs)
        samples = self.section.batchnorm_adaptation_samples
        if samples > 0 and data_loader is not None:
            adapt_batchnorm(self.model, data_loader, samples, input_fn or default_inputs)

    def _adapt_batchnorm(self, data_loader: Any, samples: int, *, input_fn: InputFn) -> bool:
        return adapt_batchnorm(self.model, data_loader, samples, input_fn, quiet=True) > 0

    # -- stripping and export --------------------------------------------------------------
    def strip_model(self, model: nn.Module) -> nn.Module:
        """Fold this algorithm's transforms into plain layers; the live training model is copied first."""
        if model is self.model:
            model = copy.deepcopy(model)
        elif has_transforms(self.model, self.name) and not has_transforms(model, self.name):
            raise AacError(
                f"{type(model).__name__} carries no '{self.name}' transforms: it was stripped already. "
                "Strip the training model (controller.strip() or strip_model(controller.model)) once"
            )
        return self._strip(model)

    def _strip(self, model: nn.Module) -> nn.Module:
        """Hook: turn this algorithm's transforms in ``model`` (a copy) into plain layers. Default: fold them."""
        fold_all(model, self.name)
        return model

    def _export(self, stripped_model: nn.Module, path: Path, **kwargs: Any) -> None:
        """Write ``stripped_model`` to ``path``; ``.onnx`` needs ``input_info`` or ``example_inputs=``."""
        example_inputs = kwargs.pop("example_inputs", None)
        if example_inputs is None and path.suffix == ".onnx":
            example_inputs = self.prepared.example_inputs()
        export_module(stripped_model, path, example_inputs, **kwargs)
