"""``accuracy_aware_fit``: the Keras-native entry point to aac's accuracy-aware training.

In the spirit of NNCF's ``model.accuracy_aware_fit``: datasets in, the compressed model and the run's
statistics out. It builds the callbacks of core's loops around ``model.fit`` and ``model.evaluate``:

* ``train_epoch_fn`` runs one epoch of ``model.fit`` (``initial_epoch=epoch, epochs=epoch + 1``, so
  Keras callbacks see the run's epoch numbers) with a :class:`~aac.tf.callbacks.CompressionCallback`
  that steps the scheduler per batch and adds the compression loss; core's loop announces epochs;
* ``validate_fn`` runs ``model.evaluate(validation_dataset, return_dict=True)`` and turns the result
  into one number with ``result_dict_to_val_metric_fn`` (default: the single compiled metric);
* ``configure_optimizers_fn`` gives the model a fresh copy of the optimizer it was compiled with, so
  every compression level starts with a fresh optimizer state and a restarted learning-rate schedule
  (scaled by the search's LR factor through the backend).

Unlike NNCF it never validates on the training data: a validation dataset is required.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aac.core.errors import AacError, CallbackError
from aac.core.plugins import Registry
from aac.core.training import TrainingLoopStatistics, create_accuracy_aware_training_loop
from aac.core.training.session import default_log_dir
from aac.tf.backend import _worker_position, broadcast_with
from aac.tf.callbacks import CompressionCallback

ResultToMetric = Callable[[Mapping[str, float]], float]


def _data_arguments(data: Any, batch_size: int | None, what: str) -> dict[str, Any]:
    """Keyword arguments for ``fit``/``evaluate``: ``(x, y[, sample_weight])`` arrays or a dataset-like object."""
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and not hasattr(data, "element_spec"):
        names = ("x", "y", "sample_weight")
        return {**dict(zip(names, data, strict=False)), "batch_size": batch_size}
    if hasattr(data, "element_spec") and what == "train_dataset":  # a tf.data.Dataset shuffles itself
        return {"x": data, "shuffle": False}
    if isinstance(data, (np.ndarray, Mapping)):
        raise AacError(
            f"{what} must be a tf.data.Dataset, a keras.utils.PyDataset or an (x, y) tuple of arrays, not a lone "
            f"{type(data).__name__}: the labels are missing"
        )
    return {"x": data}


def default_metric(results: Mapping[str, float]) -> float:
    """The one compiled metric of ``model.evaluate(return_dict=True)``; an error says what to pass when ambiguous."""
    metrics = {k: v for k, v in results.items() if k != "loss"}
    if len(metrics) == 1:
        return float(next(iter(metrics.values())))
    if not metrics:
        raise CallbackError(
            "model.evaluate() reports only 'loss'; compile the model with the metric the accuracy budget is about "
            "(metrics=['accuracy']) or pass result_dict_to_val_metric_fn=lambda r: r['loss'] together with "
            '"metric_mode": "min" in accuracy_aware_training.params'
        )
    raise CallbackError(
        f"model.evaluate() reports several metrics {sorted(metrics)}; pass result_dict_to_val_metric_fn to choose "
        f"the one the accuracy budget is about, e.g. lambda r: r['{sorted(metrics)[0]}']"
    )


class _FreshOptimizer:
    """``configure_optimizers_fn``: a fresh copy of the compiled optimizer, installed on the model."""

    def __init__(self, model: Any) -> None:
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None or not getattr(model, "compiled", False):
            raise AacError(
                f"{type(model).__name__} is not compiled: accuracy_aware_fit trains with model.fit, so compile it first "
                "(model.compile(optimizer=..., loss=..., metrics=[...]))"
            )
        self.model = model
        self.cls = type(optimizer)
        self.config = optimizer.get_config()

    def __call__(self) -> tuple[Any, None]:
        strategy = getattr(self.model, "_distribute_strategy", None)
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            optimizer = self.cls.from_config(copy.deepcopy(self.config))
        self.model.optimizer = optimizer
        self.model.train_function = None  # the traced training step captured the previous optimizer
        return optimizer, None


def accuracy_aware_fit(
    model: Any,
    compression_ctrl: Any,
    config: Any,
    train_dataset: Any,
    validation_dataset: Any = None,
    *,
    uncompressed_model_accuracy: float | None = None,
    result_dict_to_val_metric_fn: ResultToMetric | None = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    batch_size: int | None = None,
    callbacks: Sequence[Any] = (),
    log_dir: str | Path | None = None,
    tensorboard_writer: Any = None,
    verbose: bool = True,
    keras_verbose: int | str = 0,
    early_stopping_fn: Callable[[float], Any] | None = None,
    update_learning_rate_fn: Callable[..., Any] | None = None,
    registry: Registry | None = None,
    **loop_kwargs: Any,
) -> tuple[Any, TrainingLoopStatistics]:
    """Train a compressed Keras model under the config's accuracy budget; return ``(model, statistics)``.

    :param model: the compiled model returned by ``create_compressed_model`` (optimizer, loss and the metric
        the budget is about; the optimizer is copied fresh at the start and at every compression level).
    :param compression_ctrl: its controller.
    :param config: the config (with an ``accuracy_aware_training`` section that selects the loop).
    :param train_dataset: a ``tf.data.Dataset``, ``keras.utils.PyDataset`` or ``(x, y[, sample_weight])`` arrays.
    :param validation_dataset: the data the budget is checked on (same forms) - required; aac never
        validates on the training data.
    :param uncompressed_model_accuracy: the metric of the original model on ``validation_dataset``.
    :param result_dict_to_val_metric_fn: ``evaluate`` results dict -> the metric (default: the single
        compiled metric, e.g. ``"accuracy"``).
    :param callbacks: extra Keras callbacks for every ``fit`` epoch.
    :param log_dir: the run's folder (checkpoints, ``state.json``, history, TensorBoard); running again
        with the ``log_dir`` of an interrupted run resumes it.
    :param verbose: the loop's reporting (console, TensorBoard, history files); ``keras_verbose`` is the
        ``verbose`` of ``fit``/``evaluate``.
    :param loop_kwargs: passed to the loop (``dump_checkpoints``, ``lr_updates_needed``,
        ``minimal_compression_rate``, ``maximal_compression_rate``).
    :return: the model (trained, at the returned compression level) and the run's
        :class:`~aac.core.training.TrainingLoopStatistics`.
    """
    if validation_dataset is None:
        raise AacError(
            "accuracy_aware_fit needs validation_dataset: the accuracy budget must be checked on held-out data "
            "(aac never validates on the training data)"
        )
    if uncompressed_model_accuracy is None:
        raise AacError(
            "accuracy_aware_fit needs uncompressed_model_accuracy: the metric of the original (uncompressed) model on "
            "validation_dataset, e.g. original.evaluate(validation_dataset, return_dict=True)['accuracy']"
        )
    to_metric = result_dict_to_val_metric_fn or default_metric
    optimizers = _FreshOptimizer(model)
    train_args = _data_arguments(train_dataset, batch_size, "train_dataset")
    val_args = {k: v for k, v in _data_arguments(validation_dataset, batch_size, "validation_dataset").items() if k != "shuffle"}
    compression_callback = CompressionCallback(compression_ctrl, epoch_step=False)

    def train_epoch_fn(controller: Any, model: Any, epoch: int = 0, optimizer: Any = None, lr_scheduler: Any = None) -> float | None:
        history = model.fit(
            **train_args,
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=[compression_callback, *callbacks],
            verbose=keras_verbose,
        )
        losses = history.history.get("loss") or [None]
        return losses[-1]

    def validate_fn(model: Any, epoch: int = 0) -> float:
        results = model.evaluate(**val_args, steps=validation_steps, return_dict=True, verbose=keras_verbose)
        return to_metric(results)

    loop = create_accuracy_aware_training_loop(
        config, compression_ctrl, uncompressed_model_accuracy, verbose=verbose, registry=registry, **loop_kwargs
    )
    strategy = getattr(model, "_distribute_strategy", None)
    if log_dir is None and strategy is not None and _worker_position(strategy)[1] > 1:
        log_dir = broadcast_with(strategy, str(default_log_dir()))  # every worker must use rank 0's time-stamped folder
    model = loop.run(
        model,
        train_epoch_fn=train_epoch_fn,
        validate_fn=validate_fn,
        configure_optimizers_fn=optimizers,
        early_stopping_fn=early_stopping_fn,
        tensorboard_writer=tensorboard_writer,
        log_dir=log_dir,
        update_learning_rate_fn=update_learning_rate_fn,
    )
    assert loop.statistics is not None
    return model, loop.statistics
