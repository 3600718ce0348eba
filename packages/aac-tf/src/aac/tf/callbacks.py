"""Keras callbacks that run a compression controller inside ``model.fit``.

``model.fit(..., callbacks=[CompressionCallback(controller)])`` is all a Keras training script needs:

* the scheduler is stepped as NNCF's loops step it - ``scheduler.step()`` before every training batch
  and ``scheduler.epoch_step()`` before every epoch;
* the compression loss (``controller.loss()``, e.g. a sparsity regulariser) is added to the loss the
  model minimises. It is installed by :func:`install_compression_loss`, which wraps the model's
  ``compute_loss`` on the instance, so it is part of the traced training step, is scaled for
  ``tf.distribute`` like Keras' own ``add_loss`` terms, and is left out of ``evaluate`` (validation
  losses stay comparable with the uncompressed model's).

:class:`CompressionStatisticsCallback` logs ``controller.statistics()`` after every epoch
(TensorBoard via ``tf.summary`` under NNCF's ``compression/statistics/...`` tags, and/or the console).
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import keras
from keras import ops

from aac.tf.summary import SummaryWriter

logger = logging.getLogger("aac.tf")


def _is_zero_constant(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == 0


class _CompressionLoss:
    """The instance-level ``compute_loss`` of a model whose controller contributes a loss term."""

    def __init__(self, model: Any, controller: Any, inner: Any, had_training_arg: bool) -> None:
        self.model = model
        self.controller = controller
        self.inner = inner  # an instance-level compute_loss that was there before, if any
        self.had_training_arg = had_training_arg
        self.inner_has_training_arg = inner is None or "training" in inspect.signature(inner).parameters

    def __call__(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True) -> Any:
        model = self.model
        if self.inner is None:
            base = type(model).compute_loss
            if "training" in inspect.signature(base).parameters:
                loss = base(model, x, y, y_pred, sample_weight, training=training)
            else:
                loss = base(model, x, y, y_pred, sample_weight)
        elif self.inner_has_training_arg:
            loss = self.inner(x, y, y_pred, sample_weight, training=training)
        else:
            loss = self.inner(x, y, y_pred, sample_weight)
        if training and loss is not None:
            extra = self.controller.loss()
            if not _is_zero_constant(extra):
                extra = ops.cast(ops.convert_to_tensor(extra), loss.dtype)
                loss = loss + model._aggregate_additional_loss(extra)
        return loss


def install_compression_loss(model: Any, controller: Any) -> None:
    """Make ``model.fit`` minimise ``loss + controller.loss()`` (idempotent; re-traces the training step if needed)."""
    current = model.__dict__.get("compute_loss")
    if isinstance(current, _CompressionLoss):
        if current.controller is controller:
            return
        current.controller = controller
    else:
        hook = _CompressionLoss(model, controller, current, bool(getattr(model, "_compute_loss_has_training_arg", True)))
        object.__setattr__(model, "compute_loss", hook)
        object.__setattr__(model, "_compute_loss_has_training_arg", True)
    model.train_function = None


def uninstall_compression_loss(model: Any) -> None:
    """Undo :func:`install_compression_loss`."""
    current = model.__dict__.get("compute_loss")
    if not isinstance(current, _CompressionLoss):
        return
    if current.inner is None:
        object.__delattr__(model, "compute_loss")
    else:
        object.__setattr__(model, "compute_loss", current.inner)
    object.__setattr__(model, "_compute_loss_has_training_arg", current.had_training_arg)
    model.train_function = None


class CompressionCallback(keras.callbacks.Callback):
    """Steps the compression scheduler and adds the compression loss inside ``model.fit``.

    :param controller: the controller from ``create_compressed_model``.
    :param epoch_step: call ``scheduler.epoch_step()`` before each epoch. Turn it off when something
        else announces epochs (``accuracy_aware_fit`` does: core's loop calls it).
    :param step: call ``scheduler.step()`` before each training batch.
    :param add_loss: add ``controller.loss()`` to the training loss.
    """

    def __init__(self, controller: Any, *, epoch_step: bool = True, step: bool = True, add_loss: bool = True) -> None:
        super().__init__()
        self.controller = controller
        self.epoch_step = epoch_step
        self.step = step
        self.add_loss = add_loss

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        if self.add_loss:
            install_compression_loss(model, self.controller)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.epoch_step:
            self.controller.scheduler.epoch_step()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.step:
            self.controller.scheduler.step()


class CompressionStatisticsCallback(keras.callbacks.Callback):
    """Logs ``controller.statistics()`` after every epoch.

    :param log_dir: write TensorBoard scalars there (``tf.summary``), tagged ``compression/statistics/<algorithm>/<key>``.
    :param writer: an existing writer with ``add_scalar(tag, value, step)`` instead of ``log_dir``.
    :param verbose: print the statistics tables after each epoch.
    :param add_to_logs: also put the scalars into the epoch logs (so ``History`` records them).
    """

    def __init__(
        self, controller: Any, log_dir: str | Path | None = None, *, writer: Any = None, verbose: bool = False, add_to_logs: bool = False
    ) -> None:
        super().__init__()
        self.controller = controller
        self.writer = writer if writer is not None else (SummaryWriter(log_dir) if log_dir is not None else None)
        self.verbose = verbose
        self.add_to_logs = add_to_logs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        statistics = self.controller.statistics()
        scalars = statistics.scalars()
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(f"compression/statistics/{key}", value, epoch)
            self.writer.flush()
        if self.add_to_logs and logs is not None:
            logs.update({f"compression/{k}": v for k, v in scalars.items()})
        if self.verbose:
            logger.info("%s", statistics.to_str())
