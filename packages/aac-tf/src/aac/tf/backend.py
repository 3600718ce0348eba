"""``TFBackend``: how aac's framework-neutral loops save, restore, schedule and synchronise Keras runs."""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from aac.core.backend import Backend
from aac.core.config import Config
from aac.core.errors import AacError, CheckpointError
from aac.core.scopes import listed_in
from aac.tf import checkpoint
from aac.tf.keras_internals import keras_seed_generator
from aac.tf.models import TFModel, prepare_model
from aac.tf.summary import SummaryWriter
from aac.tf.transforms import has_transforms

logger = logging.getLogger("aac.tf")

_SCHEDULES = keras.optimizers.schedules


class LearningRateWarning(UserWarning):
    """The learning rate could not be scaled (an unknown schedule); training goes on with it unscaled."""


class TFBackend(Backend):
    """The backend for ``keras.Model`` models (Sequential, functional and subclassed) on TensorFlow."""

    name = "tf"
    checkpoint_suffix = ".npz"

    def __init__(self) -> None:
        self._model: Any = None

    def bind(self, model: Any) -> None:
        """Keep the model the loop trains: the primitives whose arguments do not include it need it.

        Its ``tf.distribute`` strategy answers :meth:`rank`, :meth:`broadcast` and :meth:`barrier` outside
        a ``strategy.scope()``; its variables build an optimizer restored before its first step; its
        traced train function is dropped when a learning-rate schedule is scaled.
        """
        self._model = model

    # -- model preparation -------------------------------------------------------------
    def prepare_model(self, model: Any, config: Config) -> TFModel:
        """Build the model if needed and index its layers; the graph is traced when an algorithm asks for it."""
        if has_transforms(model):
            raise AacError(
                f"{type(model).__name__} already carries aac compression (from an earlier create_compressed_model); "
                "pass the original model, or restore a saved run with compression_state= and the checkpoint's weights"
            )
        sections = config.compression_sections()
        ignored = list(dict.fromkeys(entry for section in sections for entry in section.ignored_scopes))
        return prepare_model(
            model, config, ignored, where=listed_in(sections, "ignored_scopes"), strict=all(section.validate_scopes for section in sections)
        )

    def finalize_model(self, prepared: TFModel, controller: Any) -> Any:
        """The user's own model object: algorithms changed it in place, so it is used exactly as before."""
        return prepared.model

    # -- checkpoints -------------------------------------------------------------------
    def model_state(self, model: Any) -> dict[str, Any]:
        """Every variable of the model (weights, batch-norm statistics, seed generators, transforms), as NumPy copies."""
        variables = model.variables
        return {"paths": [v.path for v in variables], "values": [np.array(v.numpy(), copy=True) for v in variables]}

    def load_model_state(self, model: Any, state: Mapping[str, Any]) -> None:
        _assign_all(model.variables, state, f"{type(model).__name__}")

    def model_structure(self, model: Any) -> dict[str, Any]:
        """The shape of every variable, in order: Keras names layers by how many were built before in the
        process (``conv2d_3``), so a resumed process would see other names for the same model."""
        return {"variables": [list(v.shape) for v in model.variables]}

    def save_checkpoint(self, path: Path, payload: Mapping[str, Any]) -> None:
        checkpoint.write(path, payload)

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        return checkpoint.read(path)

    def optimizer_problem(self, optimizer: Any) -> str | None:
        if isinstance(optimizer, keras.optimizers.Optimizer):
            return None
        return f"is a {type(optimizer).__name__}, not a keras.optimizers.Optimizer"

    def optimizer_state(self, optimizer: Any) -> dict[str, Any] | None:
        """The optimizer's variables (iterations, learning rate, slots), or ``built: False`` before its first step."""
        if optimizer is None:
            return None
        if not getattr(optimizer, "built", False):
            return {"built": False}
        variables = optimizer.variables
        return {"built": True, "paths": [v.path for v in variables], "values": [np.array(v.numpy(), copy=True) for v in variables]}

    def load_optimizer_state(self, optimizer: Any, state: Any) -> None:
        if optimizer is None or not state or not state.get("built"):
            return
        if not optimizer.built:
            if self._model is None:
                raise CheckpointError(
                    "cannot restore the optimizer state: the optimizer was never built and no model is bound to build it for; "
                    "call backend.bind(model) or optimizer.build(model.trainable_variables) first"
                )
            with _strategy_scope(self._model):
                optimizer.build(self._model.trainable_variables)
        _assign_all(optimizer.variables, state, f"optimizer {type(optimizer).__name__}")

    def rng_state(self) -> dict[str, Any]:
        """Python, NumPy (the base class's), TensorFlow's global generator and Keras' global seed generator."""
        state: dict[str, Any] = super().rng_state()
        with contextlib.suppress(Exception), tf.init_scope():
            generator = tf.random.get_global_generator()
            state["tf"] = {"state": generator.state.numpy(), "algorithm": int(generator.algorithm)}
        with contextlib.suppress(Exception), tf.init_scope():
            state["keras"] = np.asarray(keras_seed_generator().state.numpy())
        return state

    def set_rng_state(self, state: Any) -> None:
        super().set_rng_state(state)
        if not state:
            return
        if "tf" in state:
            with tf.init_scope():
                generator = tf.random.get_global_generator()
                if int(generator.algorithm) == int(state["tf"]["algorithm"]):
                    generator.reset(tf.constant(state["tf"]["state"], dtype=generator.state.dtype))
        if "keras" in state:
            with tf.init_scope():
                keras_seed_generator().state.assign(np.asarray(state["keras"]))

    # -- learning rate -----------------------------------------------------------------
    def learning_rate(self, optimizer: Any) -> float | None:
        """The rate at the optimizer's current step: a variable's value, or a schedule evaluated at ``iterations``."""
        rate = getattr(optimizer, "learning_rate", None)
        try:
            if isinstance(rate, _SCHEDULES.LearningRateSchedule):
                rate = rate(optimizer.iterations)
            return float(keras.ops.convert_to_numpy(rate))
        except (TypeError, ValueError, AttributeError):
            return None

    def scale_learning_rate(self, optimizer: Any, lr_scheduler: Any, factor: float) -> None:
        """Multiply every learning rate the optimizer will use from now on by ``factor``.

        A variable learning rate is assigned. A ``keras.optimizers.schedules`` schedule (CosineDecay,
        ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay, CosineDecayRestarts)
        has its rates scaled in place; its values are Python numbers frozen into a traced training step,
        so the train function of the bound model (if it uses this optimizer) is dropped and traced again
        at the next ``fit``. Anything else is left alone with a :class:`LearningRateWarning`.
        """
        if factor == 1.0:
            return
        schedules = []
        if optimizer is not None:
            inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
            rate = getattr(inner, "_learning_rate", None)
            if isinstance(rate, (keras.Variable, tf.Variable)):
                rate.assign(rate * factor)
            elif isinstance(rate, _SCHEDULES.LearningRateSchedule):
                schedules.append(rate)
            else:
                warnings.warn(
                    f"cannot scale the learning rate {rate!r} of {type(inner).__name__}; it stays unscaled",
                    LearningRateWarning,
                    stacklevel=2,
                )
        if isinstance(lr_scheduler, _SCHEDULES.LearningRateSchedule) and all(lr_scheduler is not s for s in schedules):
            schedules.append(lr_scheduler)
        for schedule in schedules:
            if _scale_schedule(schedule, factor):
                self._retrace(optimizer)
            else:
                warnings.warn(
                    f"cannot scale the learning-rate schedule {type(schedule).__name__} (aac scales CosineDecay, "
                    "ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay and CosineDecayRestarts); "
                    "it stays unscaled - pass update_learning_rate_fn or use a supported schedule",
                    LearningRateWarning,
                    stacklevel=2,
                )

    def _retrace(self, optimizer: Any) -> None:
        model = self._model
        if model is not None and (optimizer is None or getattr(model, "optimizer", None) is optimizer):
            model.train_function = None

    def step_lr_scheduler(self, lr_scheduler: Any, epoch: int, metric: float) -> None:
        """Keras schedules follow the optimizer's step count by themselves; other objects with ``step()`` are stepped."""
        if lr_scheduler is None or isinstance(lr_scheduler, _SCHEDULES.LearningRateSchedule):
            return
        step = getattr(lr_scheduler, "step", None)
        if callable(step):
            step()

    # -- evaluation and logging --------------------------------------------------------
    def evaluation_mode(self, model: Any) -> contextlib.AbstractContextManager[None]:
        """Nothing to switch: ``model.evaluate`` and ``model(x)`` run in inference mode already."""
        return contextlib.nullcontext()

    def create_tensorboard_writer(self, log_dir: Path) -> SummaryWriter:
        """A ``tf.summary`` writer: no ``tensorboard`` package needed (without it, one note says how to view the files)."""
        return SummaryWriter(log_dir)

    # -- distributed -------------------------------------------------------------------
    def _strategy(self) -> Any:
        """The active strategy, else the bound model's (a model created under ``strategy.scope()`` keeps it)."""
        if tf.distribute.has_strategy():
            return tf.distribute.get_strategy()
        return getattr(self._model, "_distribute_strategy", None)

    def rank(self) -> int:
        """The worker's rank under a multi-worker strategy (the chief is 0); 0 otherwise.

        ``MirroredStrategy`` runs every replica in this one process, so the loops run once and rank is 0.
        """
        return _worker_position(self._strategy())[0]

    def world_size(self) -> int:
        return _worker_position(self._strategy())[1]

    def broadcast(self, obj: Any) -> Any:
        strategy = self._strategy()
        if _worker_position(strategy)[1] <= 1:
            return obj
        return broadcast_with(strategy, obj)

    def barrier(self) -> None:
        strategy = self._strategy()
        if _worker_position(strategy)[1] > 1:
            _sum_from_first_replica(strategy, np.zeros((1,), np.int32))


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _assign_all(variables: list[Any], state: Mapping[str, Any], what: str) -> None:
    """Assign saved values to ``variables`` by position, checking count and shapes (names may differ between sessions)."""
    values, paths = list(state["values"]), list(state.get("paths", []))
    if len(values) != len(variables):
        raise CheckpointError(
            f"the saved state of {what} has {len(values)} variables but it has {len(variables)}: it was saved from a "
            "model with another architecture or compression config"
        )
    for index, (variable, value) in enumerate(zip(variables, values, strict=True)):
        value = np.asarray(value)
        if tuple(variable.shape) != value.shape:
            saved = paths[index] if index < len(paths) else f"#{index}"
            raise CheckpointError(
                f"cannot restore {what}: variable '{variable.path}' has shape {tuple(variable.shape)} but the saved "
                f"'{saved}' has shape {value.shape}"
            )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def _strategy_scope(model: Any) -> contextlib.AbstractContextManager[Any]:
    strategy = getattr(model, "_distribute_strategy", None)
    if strategy is not None and not tf.distribute.has_strategy():
        return strategy.scope()
    return contextlib.nullcontext()


_SCALED_FIELDS = {
    "CosineDecay": ("initial_learning_rate", "warmup_target"),
    "CosineDecayRestarts": ("initial_learning_rate",),
    "ExponentialDecay": ("initial_learning_rate",),
    "InverseTimeDecay": ("initial_learning_rate",),
    "PolynomialDecay": ("initial_learning_rate", "end_learning_rate"),
}


def _scale_schedule(schedule: Any, factor: float) -> bool:
    """Scale a known Keras schedule in place; False if the schedule is not one aac knows."""
    kind = type(schedule).__name__
    if isinstance(schedule, _SCHEDULES.PiecewiseConstantDecay):
        schedule.values = [v * factor for v in schedule.values]
        return True
    fields = _SCALED_FIELDS.get(kind) if type(schedule).__module__.startswith("keras.") else None
    if fields is None:
        return False
    for name in fields:
        value = getattr(schedule, name, None)
        if value is not None:
            setattr(schedule, name, value * factor)
    return True


def _worker_position(strategy: Any) -> tuple[int, int]:
    """(rank, number of workers) of this process under ``strategy``."""
    if strategy is None:
        return 0, 1
    extended = getattr(strategy, "extended", None)
    in_multi_worker = getattr(extended, "_in_multi_worker_mode", None)
    if not (callable(in_multi_worker) and in_multi_worker()):
        return 0, 1
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    chiefs = len(cluster.get("chief", []))
    workers = len(cluster.get("worker", []))
    if resolver.task_type == "chief":
        return 0, chiefs + workers
    return int(resolver.task_id) + chiefs, chiefs + workers


def _sum_from_first_replica(strategy: Any, array: np.ndarray) -> np.ndarray:
    """All-reduce in which only replica 0 (on the chief) contributes ``array``: everyone gets rank 0's value."""
    value = tf.constant(array)
    zeros = tf.zeros_like(value)

    def contribution(context: Any) -> Any:
        return value if context.replica_id_in_sync_group == 0 else zeros

    per_replica = strategy.experimental_distribute_values_from_function(contribution)
    return np.asarray(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy())


def broadcast_with(strategy: Any, obj: Any) -> Any:
    """Rank 0's JSON-able ``obj`` on every worker, through two collective all-reduces of ``strategy``."""
    data = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8).astype(np.int32)
    length = int(_sum_from_first_replica(strategy, np.array([len(data)], np.int32))[0])
    padded = np.zeros((length,), np.int32)
    padded[: min(length, len(data))] = data[:length]
    received = _sum_from_first_replica(strategy, padded)
    return json.loads(received.astype(np.uint8).tobytes().decode())
