"""The optimizer side of staged quantization for Keras training, as NNCF's staged sample had it (see
:mod:`aac.quant.torch.staged` for torch)::

    model.compile(optimizer=make_optimizer(config), loss=...)       # Adam(base_lr, base_wd), batch_multiplier
    model.fit(data, epochs=..., callbacks=[*compression_callbacks, StagedOptimizerSchedule(config)])

``batch_multiplier`` becomes Keras' ``gradient_accumulation_steps``. Keras' Adam decays weights decoupled
from the gradient (AdamW-style), torch's Adam adds ``base_wd * w`` to the gradient: the two frameworks'
runs differ in how ``base_wd`` acts, as their optimizers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from aac.quant.settings import StagedSettings
from aac.quant.staged import OptimizerSchedule, staged_settings


def make_optimizer(config: Mapping[str, Any] | StagedSettings) -> keras.optimizers.Adam:
    """Adam with ``base_lr``, ``base_wd`` and ``batch_multiplier`` batches per step."""
    settings = staged_settings(config)
    steps = settings.batch_multiplier if settings.batch_multiplier > 1 else None
    return keras.optimizers.Adam(learning_rate=settings.base_lr, weight_decay=settings.base_wd or None, gradient_accumulation_steps=steps)


class StagedOptimizerSchedule(keras.callbacks.Callback):
    """Sets the optimizer's learning rate (and switches weight decay off) per :class:`aac.quant.staged.OptimizerSchedule`,
    before every batch of ``fit``."""

    def __init__(self, config: Mapping[str, Any] | StagedSettings) -> None:
        super().__init__()
        self.schedule = OptimizerSchedule(staged_settings(config))
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        steps = (self.params or {}).get("steps") or 0
        epoch = self.epoch + (batch / steps if steps else 0.0)
        optimizer = self.model.optimizer
        rate = self.schedule.learning_rate(epoch)
        if rate is not None:
            optimizer.learning_rate.assign(rate)
        if self.schedule.weight_decay(epoch) == 0.0 and optimizer.weight_decay:
            optimizer.weight_decay = None  # read when the train step is traced: trace it again
            self.model.make_train_function(force=True)
