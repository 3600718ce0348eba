"""Writing a stripped model for inference; the format follows the file suffix.

* ``.onnx``: ``torch.onnx.export`` (the torch.export-based exporter; ``onnx`` and ``onnxscript``,
  which it needs, are dependencies of aac-torch), with a dynamic batch dimension. Pass ``dynamo=False``
  for the legacy TorchScript exporter, or any other ``torch.onnx.export`` keyword.
* ``.pt`` / ``.pth``: ``torch.save`` of the whole module (load it with ``weights_only=False``).

Files are written into a staging folder next to their destination and renamed into place, so a crash
never leaves half a model (the ONNX exporter may write the weights to a second file beside the model).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aac.core.atomic import atomic_write
from aac.core.errors import AacError

SUFFIXES = (".onnx", ".pt", ".pth")


class ExportError(AacError):
    """A model could not be written in the requested format."""


def export_module(module: nn.Module, path: Path, example_inputs: Sequence[torch.Tensor] | None, **kwargs: Any) -> None:
    """Write ``module`` to ``path`` in the format its suffix names."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        _export_onnx(module, path, tuple(example_inputs or ()), **kwargs)
    elif suffix in (".pt", ".pth"):
        atomic_write(path, lambda handle: torch.save(module, handle))
    else:
        raise ExportError(f"cannot export to '{path}': unknown suffix '{path.suffix}'; use one of {', '.join(SUFFIXES)}")


def _export_onnx(module: nn.Module, path: Path, example_inputs: tuple[torch.Tensor, ...], **kwargs: Any) -> None:
    if kwargs.get("dynamo", True):
        try:
            import onnxscript  # noqa: F401  (the exporter needs it; a broken environment fails with the fix)
        except ImportError as exc:
            raise ExportError(
                f"exporting {path} needs onnxscript, a dependency of aac-torch that is missing here: pip install onnx onnxscript"
            ) from exc
        kwargs.setdefault("dynamic_shapes", tuple({0: torch.export.Dim.DYNAMIC} for _ in example_inputs))
        kwargs.setdefault("verbose", False)
        kwargs.setdefault("external_data", False)  # one self-contained file (models below 2 GB)
    else:
        kwargs.setdefault("dynamic_axes", {f"input{i}": {0: "batch"} for i in range(len(example_inputs))})
    kwargs.setdefault("input_names", [f"input{i}" for i in range(len(example_inputs))])
    path.parent.mkdir(parents=True, exist_ok=True)
    training = module.training
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as staging:
        staged = Path(staging) / path.name
        try:
            module.eval()
            with torch.no_grad(), _quiet_exporter():
                torch.onnx.export(module, example_inputs, staged, **kwargs)
        except Exception as exc:
            raise ExportError(f"ONNX export of {type(module).__name__} to {path} failed: {exc}") from exc
        finally:
            module.train(training)
        for produced in Path(staging).iterdir():  # the model, plus its weights file if written separately
            os.replace(produced, path.parent / produced.name)


#: torch.onnx notes that concern the exporter's own set-up, not the user's model
_EXPORTER_LOGGER = "torch.onnx._internal.exporter._registration"  # "torchvision is not installed. Skipping ..."
_EXPORTER_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)",)  # torch's own deprecation, raised inside export


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's notes about itself for one export; its warnings about the model still show."""
    logger = logging.getLogger(_EXPORTER_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for message in _EXPORTER_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)
