"""The training runner: calls the user's callbacks, checks what they return, saves and restores.

It is written once for every framework; framework questions (how to save a tensor, how to scale a
learning rate, which rank writes) go to the :class:`~aac.core.backend.Backend`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aac.core.api import real_number
from aac.core.backend import Backend
from aac.core.errors import CallbackError, CheckpointError

CHECKPOINT_FORMAT = "aac-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Callbacks:
    """The user's functions, with NNCF's signatures."""

    train_epoch_fn: Callable[..., Any]
    validate_fn: Callable[..., Any]
    configure_optimizers_fn: Callable[[], Any] | None = None
    dump_checkpoint_fn: Callable[..., Any] | None = None
    load_checkpoint_fn: Callable[..., Any] | None = None
    early_stopping_fn: Callable[[float], Any] | None = None
    update_learning_rate_fn: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        for name in ("train_epoch_fn", "validate_fn"):
            if not callable(getattr(self, name)):
                raise CallbackError(f"{name} must be a function, got {type(getattr(self, name)).__name__}")


def as_metric(value: Any, what: str) -> float:
    """``value`` as a finite float, or a CallbackError saying which callback returned what."""
    metric = real_number(value)
    if metric is None:
        raise CallbackError(f"{what} returned {type(value).__name__} {value!r:.60}; it must return one finite number")
    if not math.isfinite(metric):
        raise CallbackError(f"{what} returned {metric}; the metric must be a finite number (did training diverge?)")
    return metric


class TrainingRunner:
    """Owns the optimizer, the epoch counter and checkpoint payloads of one run."""

    def __init__(self, backend: Backend, controller: Any, model: Any, callbacks: Callbacks, lr_updates_needed: bool = True) -> None:
        self.backend = backend
        self.controller = controller
        self.model = model
        self.callbacks = callbacks
        self.lr_updates_needed = lr_updates_needed
        self.optimizer: Any = None
        self.lr_scheduler: Any = None
        self.cumulative_epochs = 0

    @property
    def is_main_process(self) -> bool:
        return self.backend.rank() == 0

    # -- training -------------------------------------------------------------------------
    def configure_optimizers(self, lr_scale: float = 1.0) -> None:
        """A fresh optimizer and LR scheduler from ``configure_optimizers_fn``, LR scaled by ``lr_scale``."""
        fn = self.callbacks.configure_optimizers_fn
        if fn is None:
            self.optimizer = self.lr_scheduler = None
            return
        result = fn()
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise CallbackError(
                f"configure_optimizers_fn must return (optimizer, lr_scheduler) - lr_scheduler may be None - "
                f"but returned {type(result).__name__}"
            )
        self.optimizer, self.lr_scheduler = result
        problem = None if self.optimizer is None else self.backend.optimizer_problem(self.optimizer)
        if problem:
            raise CallbackError(f"configure_optimizers_fn returned an optimizer that {problem}")
        if lr_scale != 1.0:
            self.backend.scale_learning_rate(self.optimizer, self.lr_scheduler, lr_scale)

    def train_epoch(self) -> float | None:
        """One epoch: announce it to the scheduler, then run ``train_epoch_fn``; returns its loss if any."""
        self.controller.scheduler.epoch_step()
        loss = self.callbacks.train_epoch_fn(
            self.controller, self.model, epoch=self.cumulative_epochs, optimizer=self.optimizer, lr_scheduler=self.lr_scheduler
        )
        self.cumulative_epochs += 1
        try:
            return None if loss is None else float(loss)
        except (TypeError, ValueError):
            return None

    def validate(self) -> float:
        """Run ``validate_fn`` in evaluation mode; every rank gets rank 0's metric."""
        with self.backend.evaluation_mode(self.model):
            value = self.callbacks.validate_fn(self.model, epoch=self.cumulative_epochs)
        metric = as_metric(value, f"validate_fn (epoch {self.cumulative_epochs})")
        return float(self.backend.broadcast(metric))

    def should_stop_early(self, metric: float) -> bool:
        fn = self.callbacks.early_stopping_fn
        return bool(fn(metric)) if fn is not None else False

    def update_learning_rate(self, level_epoch: int, metric: float | None, loss: float | None) -> None:
        if self.callbacks.update_learning_rate_fn is not None:
            self.callbacks.update_learning_rate_fn(self.lr_scheduler, level_epoch, metric, loss)
        elif self.lr_updates_needed:
            self.backend.step_lr_scheduler(self.lr_scheduler, level_epoch, metric if metric is not None else math.nan)

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, path: Path, *, with_training_state: bool, info: Mapping[str, Any]) -> None:
        """Write the model and controller (plus optimizer and RNG for resuming) - main process only."""
        if not self.is_main_process:
            return
        payload: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": self.backend.model_state(self.model),
            "compression_state": self.controller.get_state(),
            "info": dict(info),
        }
        if with_training_state:
            payload["optimizer"] = self.backend.optimizer_state(self.optimizer) if self.optimizer is not None else None
            scheduler = self.lr_scheduler
            payload["lr_scheduler"] = scheduler.state_dict() if hasattr(scheduler, "state_dict") else None
            payload["rng"] = self.backend.rng_state()
        self.backend.save_checkpoint(path, payload)
        if self.callbacks.dump_checkpoint_fn is not None:
            self.callbacks.dump_checkpoint_fn(self.model, self.controller, self, str(path.parent))

    def load_checkpoint(self, path: Path, *, with_training_state: bool) -> dict[str, Any]:
        """Restore the model and controller (and optimizer/RNG) from ``path`` on every rank."""
        self.backend.barrier()
        if self.callbacks.load_checkpoint_fn is not None and not with_training_state:
            self.callbacks.load_checkpoint_fn(self.model, str(path))
            return {}
        payload = self.backend.load_checkpoint(path)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise CheckpointError(f"{path} is not an aac checkpoint (format {found!r})")
        missing = [k for k in ("model", "compression_state") if k not in payload]
        if missing:
            raise CheckpointError(f"{path} is damaged: it has no {' and no '.join(missing)}; delete the run folder to start afresh")
        self.backend.load_model_state(self.model, payload["model"])
        self.controller.load_state(payload["compression_state"])
        if with_training_state:
            if payload.get("optimizer") is not None and self.optimizer is not None:
                self.backend.load_optimizer_state(self.optimizer, payload["optimizer"])
            if payload.get("lr_scheduler") is not None and hasattr(self.lr_scheduler, "load_state_dict"):
                self.lr_scheduler.load_state_dict(payload["lr_scheduler"])
            self.backend.set_rng_state(payload.get("rng"))
        return payload
