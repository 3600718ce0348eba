"""What a framework backend provides: model preparation plus the primitives the training loops need.

The loops are written once, in core; a backend only answers framework questions - how to save a
checkpoint, how to scale a learning rate, which process is rank 0. :class:`GenericBackend` answers
them for any object with ``state_dict()`` / ``load_state_dict()`` (JSON checkpoints, one process), so
core's loops run end to end with no framework installed.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aac.core.api import real_number
from aac.core.atomic import atomic_write_bytes
from aac.core.errors import CheckpointError


class Backend(ABC):
    """Framework primitives used by :func:`aac.core.create_compressed_model` and the loops."""

    #: framework name algorithms register implementations for ("torch", "tf", "python")
    name: str = ""
    #: suffix of checkpoint files written by :meth:`save_checkpoint`
    checkpoint_suffix: str = ".ckpt"

    # -- model preparation -------------------------------------------------------------
    def prepare_model(self, model: Any, config: Any) -> Any:
        """Return the model algorithms will act on (a wrapper, a traced graph …). Default: as is."""
        return model

    def finalize_model(self, prepared: Any, controller: Any) -> Any:
        """Return the compressed model handed back to the user. Default: the prepared model."""
        return prepared

    def bind(self, model: Any) -> None:
        """Called once by a loop's ``run`` with the model it trains, before any other call.

        A backend that needs the model to answer later questions (TF: its distribution strategy
        for ``broadcast``, its optimizer for restoring state) keeps what it needs here.
        """

    # -- checkpoints -------------------------------------------------------------------
    @abstractmethod
    def model_state(self, model: Any) -> Any:
        """A snapshot of the model's weights, safe to keep while training goes on."""

    @abstractmethod
    def load_model_state(self, model: Any, state: Any) -> None:
        """Put a snapshot from :meth:`model_state` back into ``model``."""

    def model_structure(self, model: Any) -> dict[str, Any]:
        """What identifies the model's architecture - parameter names and shapes - for the resume fingerprint.

        The default reads :meth:`model_state` and keeps each entry's shape (or its type); backends
        override it when their names are not stable across processes.
        """
        state = self.model_state(model)
        return {str(k): list(getattr(v, "shape", ())) or type(v).__name__ for k, v in state.items()} if isinstance(state, Mapping) else {}

    @abstractmethod
    def save_checkpoint(self, path: Path, payload: Mapping[str, Any]) -> None:
        """Write ``payload`` (weights, JSON-able states, optimizer state) to ``path`` atomically."""

    @abstractmethod
    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        """Read a checkpoint written by :meth:`save_checkpoint`; raise CheckpointError if unusable."""

    def optimizer_problem(self, optimizer: Any) -> str | None:
        """Why ``optimizer`` (from ``configure_optimizers_fn``) cannot be used, or None if it can."""
        return None

    def optimizer_state(self, optimizer: Any) -> Any:
        return optimizer.state_dict() if hasattr(optimizer, "state_dict") else None

    def load_optimizer_state(self, optimizer: Any, state: Any) -> None:
        if state is not None and hasattr(optimizer, "load_state_dict"):
            optimizer.load_state_dict(state)

    def rng_state(self) -> Any:
        """Random-number-generator state, saved so that a resumed run repeats the same draws: Python's, and NumPy's
        global generator where NumPy is installed (framework backends add their own generators)."""
        state: dict[str, Any] = {"python": _encode_python_rng(random.getstate())}
        numpy = _numpy()
        if numpy is not None:
            state["numpy"] = _encode_numpy_rng(numpy.random.get_state())
        return state

    def set_rng_state(self, state: Any) -> None:
        if not state:
            return
        if "python" in state:
            random.setstate(_decode_python_rng(state["python"]))
        numpy = _numpy()
        if "numpy" in state and numpy is not None:
            numpy.random.set_state(_decode_numpy_rng(numpy, state["numpy"]))

    # -- learning rate -----------------------------------------------------------------
    def learning_rate(self, optimizer: Any) -> float | None:
        """The learning rate ``optimizer`` uses now (its first parameter group's), for the epoch log; None if unknown."""
        groups = getattr(optimizer, "param_groups", None)
        if groups:
            return real_number(groups[0].get("lr"))
        return None

    def scale_learning_rate(self, optimizer: Any, lr_scheduler: Any, factor: float) -> None:
        """Multiply the learning rate by ``factor`` (the search cuts it on direction changes)."""
        for group in getattr(optimizer, "param_groups", ()):
            group["lr"] *= factor
        if hasattr(optimizer, "lr") and not hasattr(optimizer, "param_groups"):
            optimizer.lr *= factor
        if hasattr(lr_scheduler, "base_lrs"):
            lr_scheduler.base_lrs = [lr * factor for lr in lr_scheduler.base_lrs]

    def step_lr_scheduler(self, lr_scheduler: Any, epoch: int, metric: float) -> None:
        """Advance the user's LR scheduler after an epoch (default: ``lr_scheduler.step()``)."""
        if lr_scheduler is not None and hasattr(lr_scheduler, "step"):
            lr_scheduler.step()

    # -- evaluation and logging --------------------------------------------------------
    def evaluation_mode(self, model: Any) -> contextlib.AbstractContextManager[None]:
        """Context for ``validate_fn`` (torch: ``no_grad``)."""
        return contextlib.nullcontext()

    def create_tensorboard_writer(self, log_dir: Path) -> Any:
        """A writer with ``add_scalar(tag, value, step)`` for ``log_dir``, or None if unavailable."""
        from aac.core.training.tensorboard import create_scalar_writer

        return create_scalar_writer(log_dir)

    # -- distributed -------------------------------------------------------------------
    def rank(self) -> int:
        return 0

    def world_size(self) -> int:
        return 1

    def broadcast(self, obj: Any) -> Any:
        """Return rank 0's ``obj`` on every rank (so all ranks take the same search decisions)."""
        return obj

    def barrier(self) -> None:
        """Wait until every rank gets here (so no rank reads a checkpoint before it is written)."""


def _encode_python_rng(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _decode_python_rng(state: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _numpy() -> Any:
    """NumPy, or None: aac-core does not depend on it, every framework backend does."""
    try:
        return importlib.import_module("numpy")
    except ImportError:
        return None


def _encode_numpy_rng(state: tuple[Any, ...]) -> dict[str, Any]:
    """NumPy's legacy global state in plain types (JSON, and torch's ``weights_only`` loading, take them)."""
    version, keys, position, has_gauss, cached = state
    return {
        "version": str(version),
        "keys": [int(key) for key in keys],
        "position": int(position),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _decode_numpy_rng(numpy: Any, saved: Mapping[str, Any]) -> tuple[Any, ...]:
    """The tuple ``numpy.random.set_state`` takes; ``keys`` may also be an array or a CPU tensor (older checkpoints)."""
    keys = numpy.asarray(saved["keys"]).astype(numpy.uint32)
    return (str(saved["version"]), keys, int(saved["position"]), int(saved["has_gauss"]), float(saved["cached_gaussian"]))


class GenericBackend(Backend):
    """Backend for any object with ``state_dict()``/``load_state_dict()``; checkpoints are JSON.

    It is what core's tests and pure-Python models use, and the fallback when no framework backend
    claims a model. States must be JSON-serialisable; anything else is reported, never pickled.
    """

    name = "python"
    checkpoint_suffix = ".json"

    @staticmethod
    def claims(model: Any) -> bool:
        return callable(getattr(model, "state_dict", None)) and callable(getattr(model, "load_state_dict", None))

    def model_state(self, model: Any) -> Any:
        return json.loads(json.dumps(model.state_dict()))  # deep copy that also proves it serialises

    def load_model_state(self, model: Any, state: Any) -> None:
        model.load_state_dict(state)

    def save_checkpoint(self, path: Path, payload: Mapping[str, Any]) -> None:
        try:
            data = json.dumps(payload, indent=1).encode()
        except TypeError as exc:
            raise CheckpointError(
                f"cannot write checkpoint {path}: the generic backend stores JSON and {exc}; "
                "install the backend for your framework (aac-torch, aac-tf) or return JSON-able state_dicts"
            ) from exc
        atomic_write_bytes(path, data)

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = json.loads(Path(path).read_text())
            return payload
        except FileNotFoundError as exc:
            raise CheckpointError(f"checkpoint {path} does not exist") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"checkpoint {path} is corrupt: {exc}") from exc
