"""aac's TensorFlow checkpoint file: one ``.npz`` holding the arrays and a JSON document for the rest.

A checkpoint payload (see :mod:`aac.core.training.runner`) mixes tensors - model weights, optimizer
slots, generator states - with JSON-able data: the compression state, run info, the Python RNG state.
Every array is stored as an ``.npz`` member ``a<N>`` and replaced in the JSON document by
``{"__ndarray__": "a<N>"}``; the document is the member ``__aac__`` (UTF-8 bytes). The file is written
through :func:`aac.core.atomic.atomic_write` (a crash leaves the old file or the new one) and read
with ``allow_pickle=False``, so loading a checkpoint never runs code. Arrays of dtypes NumPy cannot
store natively (``bfloat16``) are stored as raw bytes plus their dtype name.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aac.core.atomic import atomic_write
from aac.core.errors import CheckpointError

DOCUMENT = "__aac__"
ARRAY_KEY = "__ndarray__"
TUPLE_KEY = "__tuple__"


def _to_array(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array if it is a tensor-like (TF tensor, variable, NumPy array/scalar)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return None  # scalars become JSON numbers
    if hasattr(value, "numpy") and hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.asarray(value.numpy())
    return None


def encode(payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split ``payload`` into a JSON document and named arrays."""
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any, where: str) -> Any:
        array = _to_array(value)
        if array is not None:
            if array.dtype.kind == "O":
                raise CheckpointError(f"cannot write checkpoint: {where} is an array of Python objects (it would need pickle)")
            key = f"a{len(arrays)}"
            ref: dict[str, Any] = {ARRAY_KEY: key}
            if array.dtype.isbuiltin != 1 and array.dtype.kind not in "biufcSU":
                ref["dtype"] = str(array.dtype)
                ref["shape"] = list(array.shape)
                array = np.frombuffer(np.ascontiguousarray(array).tobytes(), dtype=np.uint8)
            arrays[key] = array
            return ref
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise CheckpointError(f"cannot write checkpoint: key {k!r} at {where} is not a string")
                out[k] = walk(v, f"{where}.{k}")
            return out
        if isinstance(value, tuple):
            return {TUPLE_KEY: [walk(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise CheckpointError(f"cannot write checkpoint: {where} is a {type(value).__name__}, which is neither an array nor JSON data")

    return walk(dict(payload), "$"), arrays


def decode(document: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if ARRAY_KEY in value:
                array = arrays[value[ARRAY_KEY]]
                if "dtype" in value:
                    array = np.frombuffer(array.tobytes(), dtype=_dtype(value["dtype"])).reshape(value["shape"])
                return array
            if TUPLE_KEY in value:
                return tuple(walk(v) for v in value[TUPLE_KEY])
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(document)


def _dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes  # installed with TensorFlow; registers bfloat16 and friends

        return np.dtype(getattr(ml_dtypes, name))


def write(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically."""
    document, arrays = encode(payload)
    text = json.dumps(document, allow_nan=True).encode()
    members = {DOCUMENT: np.frombuffer(text, dtype=np.uint8), **arrays}
    atomic_write(path, lambda handle: np.savez(handle, **members))


def read(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`write`; CheckpointError if it is missing, corrupt or foreign."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint {path} does not exist") from exc
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if DOCUMENT not in archive.files:
                raise CheckpointError(f"{path} is an .npz file but not an aac checkpoint (it has no '{DOCUMENT}' member)")
            members = {name: archive[name] for name in archive.files}
        document = json.loads(members.pop(DOCUMENT).tobytes().decode())
        payload = decode(document, members)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not an aac TensorFlow checkpoint: {exc}") from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, not an aac checkpoint")
    return payload
