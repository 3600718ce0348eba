"""Writing a stripped Keras model for inference: ``.keras``, a SavedModel directory, or ``.weights.h5``.

The format follows the path: ``model.keras`` (Keras' own archive, reloadable with
``keras.saving.load_model``), ``model.weights.h5`` (weights only), and a path without a suffix (or
ending in ``.savedmodel``) for a TensorFlow SavedModel directory written by ``model.export`` (serving
signature ``serve``/``serving_default``, loadable with ``tf.saved_model.load`` and TF Serving).
Every write is atomic: files are written beside the target and renamed over it; a SavedModel is
written to a temporary directory that replaces the old one only when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras

from aac.core.errors import AacError
from aac.tf.models import resized_by_code
from aac.tf.transforms import has_transforms

SAVEDMODEL_SUFFIXES = ("", ".savedmodel")


class ExportError(AacError, ValueError):
    """A model cannot be exported to the requested path or format."""


def export_format(path: Path) -> str:
    """``"keras"``, ``"weights"`` or ``"saved_model"`` for ``path``; ExportError for anything else."""
    name = path.name
    if name.endswith(".weights.h5"):
        return "weights"
    if path.suffix == ".keras":
        return "keras"
    if path.suffix in SAVEDMODEL_SUFFIXES or path.is_dir():
        return "saved_model"
    hints = {
        ".h5": "the legacy HDF5 model format is not written by aac; use a .keras file",
        ".onnx": "export a SavedModel (a path without suffix) and convert its serving function with tf2onnx.convert.from_function",
        ".tflite": "export a SavedModel and convert it with tf.lite.TFLiteConverter.from_saved_model",
    }
    raise ExportError(
        f"cannot export a Keras model to '{path}': {hints.get(path.suffix, 'unknown file type')}. Supported: "
        "'model.keras', 'model.weights.h5', or a directory path (no suffix, or '.savedmodel') for a SavedModel"
    )


def export_model(
    model: Any, path: str | os.PathLike[str], *, inputs: Sequence[Any] = (), input_signature: Any = None, **kwargs: Any
) -> Path:
    """Write the plain (stripped) ``model`` to ``path``; the format comes from the path (see the module doc).

    :param inputs: :class:`~aac.tf.models.InputSpec` s used for the SavedModel signature of a subclassed
        model that recorded no input shapes (functional models know their inputs).
    :param input_signature: passed to ``model.export`` as is (overrides ``inputs``).
    :param kwargs: passed to ``model.save`` / ``model.export``.
    """
    path = Path(path)
    if has_transforms(model):
        raise ExportError(
            "this model still carries aac transforms (masks, fake quantizers); export controller.strip() - or call "
            "controller.export_model(path), which strips first"
        )
    kind = export_format(path)
    resized = resized_by_code(model) if kind == "keras" else []
    if resized:
        raise ExportError(
            f"a .keras file cannot hold this model: strip() made {', '.join(resized[:3])}{' …' if len(resized) > 3 else ''} "
            "smaller inside a subclassed model or custom layer, whose config (what .keras stores) builds them at the original "
            "size again; export a SavedModel (a directory path) instead"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    if kind in ("keras", "weights"):
        suffix = ".weights.h5" if kind == "weights" else ".keras"
        temporary = path.with_name(f".{path.name}.{token}.tmp{suffix}")
        try:
            with _quiet_numpy_copy_warning():
                if kind == "keras":
                    model.save(temporary, **kwargs)
                else:
                    model.save_weights(temporary, **kwargs)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return path
    temporary_dir = path.with_name(f".{path.name}.{token}.tmp")
    if input_signature is None and inputs and not getattr(model, "inputs", None) and not getattr(model, "_build_shapes_dict", None):
        input_signature = [keras.InputSpec(shape=(None, *spec.shape[1:]), dtype=spec.dtype) for spec in inputs]
    try:
        with _quiet_numpy_copy_warning():
            model.export(str(temporary_dir), format="tf_saved_model", input_signature=input_signature, verbose=False, **kwargs)
        _replace_directory(temporary_dir, path)
    finally:
        if temporary_dir.exists():
            shutil.rmtree(temporary_dir, ignore_errors=True)
    return path


@contextlib.contextmanager
def _quiet_numpy_copy_warning() -> Iterator[None]:
    """Keras/TF convert every variable with ``np.array(x)``, which trips NumPy 2's copy-keyword deprecation."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy keyword", category=DeprecationWarning)
        yield


def _replace_directory(new: Path, target: Path) -> None:
    """Put directory ``new`` at ``target``; an existing ``target`` is moved aside first and removed last."""
    if target.exists() and not target.is_dir():
        raise ExportError(f"cannot write a SavedModel directory to {target}: a file of that name exists")
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(target, backup)
    os.replace(new, target)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
