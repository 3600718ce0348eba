"""The PyTorch side of aac-core's algorithm contract: :class:`TorchFramework` and :class:`TorchCompressionAlgorithm`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from aac.core.config import AlgorithmSection
from aac.core.framework import FrameworkAlgorithm
from aac.torch.batchnorm import InputFn, adapt_batchnorm, default_inputs
from aac.torch.export import export_module
from aac.torch.tracing import TorchModel
from aac.torch.transforms import fold_all, has_transforms

__all__ = ["TorchCompressionAlgorithm", "TorchFramework"]


class TorchFramework:
    """:class:`aac.core.framework.Framework` for a ``torch.nn.Module``.

    Copies are deep copies (weight transforms, hooks and buffers included); folding bakes an owner's
    weight transforms (:mod:`aac.torch.transforms`) into the weights; export writes ``.onnx``
    (``torch.onnx.export``, sample inputs from ``input_info`` unless ``example_inputs=`` is given) and
    ``.pt``/``.pth`` (``torch.save`` of the module); batches are read with ``input_fn``.
    """

    def __init__(self, prepared: TorchModel) -> None:
        self.prepared = prepared

    @property
    def model(self) -> nn.Module:
        return self.prepared.module

    def copy(self, model: nn.Module) -> nn.Module:
        return copy.deepcopy(model)

    def has_transforms(self, model: nn.Module, owner: str) -> bool:
        return has_transforms(model, owner)

    def fold(self, model: nn.Module, owner: str) -> nn.Module:
        fold_all(model, owner)
        return model

    def export(self, model: nn.Module, path: Path, **kwargs: Any) -> None:
        example_inputs = kwargs.pop("example_inputs", None)
        if example_inputs is None and path.suffix == ".onnx":
            example_inputs = self.prepared.example_inputs()
        export_module(model, path, example_inputs, **kwargs)

    def batch_reading(self, *, input_fn: InputFn | None = None, batch_size: int | None = None) -> dict[str, Any]:
        if batch_size is not None:
            raise TypeError("initialize(): batch_size= is for Keras models; a torch model reads batches with input_fn= (or a DataLoader)")
        return {"input_fn": input_fn or default_inputs}

    def adapt_batchnorm(self, model: nn.Module, data_loader: Any, samples: int, reading: Mapping[str, Any], *, quiet: bool) -> bool:
        return adapt_batchnorm(model, data_loader, samples, reading["input_fn"], quiet=quiet) > 0


class TorchCompressionAlgorithm(FrameworkAlgorithm):
    """Base class of a torch algorithm that needs nothing beyond the shared flow (the plugin guide's path).

    A subclass receives the prepared model and its config section, registers weight transforms on
    the user's modules (:mod:`aac.torch.transforms`) and may override ``_strip`` to do more than fold
    them. It gets everything of :class:`aac.core.framework.FrameworkAlgorithm` over :class:`TorchFramework`:
    :attr:`section_scopes` and :meth:`is_selected`, ``initialize`` (batch-norm adaptation), ``strip_model``
    on a deep copy of the live model, and export to ``.onnx`` and ``.pt``.
    """

    prepared: TorchModel

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(TorchFramework(prepared), section)
